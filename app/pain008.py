"""The collection file we send to the bank: ISO 20022 pain.008, written by sepaxml and validated against the
official XSD it ships. Facts: shared/REFERENCE.md sections 2 and 5.

Two things sepaxml does not do for us: it invents its own <MsgId> (the bank quotes ours back in its answers, so
we write the one we store), and it leaves characters outside the SEPA Latin set in addresses and names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sepaxml import SepaDD
from text_unidecode import unidecode

NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]+")


def sepa_text(value: str | None, limit: int = 70) -> str:
    """`value` in the EPC character set: accents transliterated (é -> e), anything else (& < > " ; @ # _ ...)
    replaced by a space, spaces folded."""
    text = NOT_SEPA.sub(" ", unidecode(value or ""))
    return " ".join(text.split())[:limit].strip()


@dataclass
class Party:
    name: str
    iban: str
    bic: str | None
    street: str | None = None
    postcode: str | None = None
    town: str | None = None
    country: str = "FR"

    def address(self) -> dict:
        return {"street_name": sepa_text(self.street), "postcode": sepa_text(self.postcode, 16),
                "town": sepa_text(self.town, 35), "country": self.country}


@dataclass
class Debit:
    debtor: Party
    amount: Decimal
    sequence_type: str  # FRST or RCUR
    mandate_reference: str
    mandate_date: date
    end_to_end_id: str
    description: str


class _Writer(SepaDD):
    def __init__(self, config: dict, schema: str, message_id: str):
        self._message_id = message_id
        super().__init__(config, schema=schema, clean=True)

    def _create_header(self):
        self.msg_id = self._message_id  # ours, not the library's random one
        super()._create_header()


def collection_file(creditor: Party, creditor_id: str, schema: str, message_id: str, collection_date: date,
                    debits: list[Debit]) -> bytes:
    """The pain.008 document of one collection date, checked against its XSD (sepaxml raises otherwise)."""
    structured = schema != "pain.008.001.02"  # the 2019 rulebook wants structured addresses
    config = {"name": sepa_text(creditor.name), "IBAN": creditor.iban, "BIC": creditor.bic, "batch": True,
              "creditor_id": creditor_id, "currency": "EUR", "instrument": "CORE"}
    if structured:
        config["address"] = creditor.address()
    writer = _Writer(config, schema, message_id)
    for debit in debits:
        payment = {"name": sepa_text(debit.debtor.name), "IBAN": debit.debtor.iban,
                   "amount": int((debit.amount * 100).to_integral_value()), "type": debit.sequence_type,
                   "collection_date": collection_date, "mandate_id": debit.mandate_reference,
                   "mandate_date": debit.mandate_date, "description": sepa_text(debit.description, 140),
                   "endtoend_id": debit.end_to_end_id}
        if debit.debtor.bic:
            payment["BIC"] = debit.debtor.bic
        if structured:
            payment["address"] = debit.debtor.address()
        writer.add_payment(payment)
    return writer.export(validate=True)
