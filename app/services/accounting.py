"""The accounting export: every money movement the portal originated, as a CSV for the landlord's accountants.

This file format is an interface: change it only with the accountants. One line per ledger entry of kind card
payment, card reversal, direct debit or reject whose date (`LedgerEntry.entry_date`) falls in the range, both ends
included, in order of date then entry id.

Format: UTF-8 with a byte-order mark, `;` separator, `\\r\\n` line ends, `"` quoting only where needed (csv module),
a header line, then one line per movement with these columns:

=================  ================================================================================================
column             content
=================  ================================================================================================
date               date of the movement, ISO `YYYY-MM-DD`
numero_client      the household's 8-digit client number
contrat            the lease, `L/` and its 6-digit number
nature             PAIEMENT_CARTE, ANNULATION_CARTE, PRELEVEMENT or REJET_PRELEVEMENT
sens               CREDIT (the household paid) or DEBIT (a reversal or a reject), as in the household's ledger
montant            always positive, dot and two decimals: `351.12`
reference          ours: the card payment's order id; the direct debit's end-to-end id; for a card reversal or a
                   reject, the reference of the movement it cancels
reference_banque   card payment: the bank's transaction uuid; card reversal: the uuid of the bank operation that
                   undid the payment (the payment's own when cancelled, the refund's when refunded), else the
                   payment's; direct debit and reject: the <MsgId> of the pain.008 file
rum                the mandate reference (RUM) for direct debits and rejects, else empty
ecriture           the ledger entry id, to trace each line back
libelle            the entry's label
=================  ================================================================================================

Lines follow the ledger: a partial card refund is the reversal of the whole credit plus a new PAIEMENT_CARTE for
the part kept; a direct debit rejected before its collection date was never credited, so it has no line at all.
A reference is empty when nothing links the entry (the demo seed's payments, a card payment whose transaction is
gone). A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` so that a spreadsheet
never reads it as a formula (OWASP CSV injection); dates, amounts and ids never start with one of these.

One query with outer joins (reversed credit, direct-debit share, collection, file, mandate, card transaction),
streamed in chunks: no query per line, constant memory.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Iterator, NamedTuple, TextIO

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import aliased

from app.extensions import db
from app.formatting import spreadsheet_text
from app.models import (
    DirectDebitBatch, DirectDebitCollection, DirectDebitMandate, DirectDebitShare, EntryKind, Household, Lease,
    LedgerEntry, PaymentTransaction,
)

COLUMNS = ("date", "numero_client", "contrat", "nature", "sens", "montant", "reference", "reference_banque", "rum",
           "ecriture", "libelle")
NATURES = {
    EntryKind.CARD_PAYMENT: "PAIEMENT_CARTE",
    EntryKind.CARD_REVERSAL: "ANNULATION_CARTE",
    EntryKind.DIRECT_DEBIT: "PRELEVEMENT",
    EntryKind.REJECT: "REJET_PRELEVEMENT",
}
CARD_KINDS = (EntryKind.CARD_PAYMENT, EntryKind.CARD_REVERSAL)
MAX_DAYS = 366
BOM = "\ufeff"
# app.services.payments writes "systempay:<trans_uuid>" or "systempay:<trans_uuid>:<lease id or k...>" on card credits
# and "systempay-reversal:<uuid of the operation that undid it>:<credit id>" on their reversals.
CARD_PREFIX = "systempay:"
REVERSAL_PREFIX = "systempay-reversal:"
UUID_LENGTH = 32  # Systempay's vads_trans_uuid, as stored in PaymentTransaction.trans_uuid
CHUNK_ROWS = 2000


class AccountingError(ValueError):
    """A bad date range; `field` is "start" or "end"."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


class ExportRow(NamedTuple):
    date: date
    numero_client: str
    contrat: str
    nature: str
    sens: str
    montant: Decimal
    reference: str
    reference_banque: str
    rum: str
    ecriture: int
    libelle: str


# --- the date range ------------------------------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_FRENCH = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$", re.ASCII)


def parse_day(text: str | None, field: str) -> date:
    """`YYYY-MM-DD` (what date inputs send) or `JJ/MM/AAAA` -> a date, else AccountingError."""
    value = (text or "").strip()
    if not value:
        raise AccountingError(_("Indiquez la date de début.") if field == "start" else _("Indiquez la date de fin."),
                              field)
    iso, french = _ISO.match(value), _FRENCH.match(value)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if french:
            return date(int(french[3]), int(french[2]), int(french[1]))
    except ValueError:
        pass
    raise AccountingError(_("Date invalide : saisissez-la au format AAAA-MM-JJ, par exemple 2026-11-30."), field)


def parse_range(start_text: str | None, end_text: str | None) -> tuple[date, date]:
    """The export's range from what a person typed: both dates valid, in order, and at most MAX_DAYS days."""
    start, end = parse_day(start_text, "start"), parse_day(end_text, "end")
    check_range(start, end)
    return start, end


def check_range(start: date, end: date) -> None:
    if start > end:
        raise AccountingError(_("La date de début doit être antérieure ou égale à la date de fin."), "start")
    if (end - start).days + 1 > MAX_DAYS:
        raise AccountingError(_("La période ne peut pas dépasser %(days)s jours.", days=MAX_DAYS), "end")


def previous_month(today: date) -> tuple[date, date]:
    """The usual range: the whole month before `today`."""
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


# --- the rows ------------------------------------------------------------------------------------------------------

def _query(start: date, end: date) -> sa.Select:
    cancelled = aliased(LedgerEntry)  # the credit a reversal or a reject cancels
    source_id = sa.func.coalesce(LedgerEntry.reverses_id, LedgerEntry.id)
    source_ref = sa.func.coalesce(cancelled.external_ref, LedgerEntry.external_ref)
    return (
        sa.select(LedgerEntry.entry_date, Household.client_number, Lease.number, LedgerEntry.kind,
                  LedgerEntry.direction, LedgerEntry.amount, LedgerEntry.id, LedgerEntry.label,
                  LedgerEntry.external_ref, source_ref,
                  PaymentTransaction.order_id, PaymentTransaction.trans_uuid, DirectDebitCollection.end_to_end_id,
                  DirectDebitBatch.message_id, DirectDebitMandate.reference)
        .join(Household, Household.id == LedgerEntry.household_id)
        .join(Lease, Lease.id == LedgerEntry.lease_id)
        .outerjoin(cancelled, cancelled.id == LedgerEntry.reverses_id)
        # A direct debit's credit, or the credit a reject cancels, is the credit of one share of one collection.
        .outerjoin(DirectDebitShare, sa.and_(LedgerEntry.kind.in_((EntryKind.DIRECT_DEBIT, EntryKind.REJECT)),
                                             DirectDebitShare.credit_entry_id == source_id))
        .outerjoin(DirectDebitCollection, DirectDebitCollection.id == DirectDebitShare.collection_id)
        .outerjoin(DirectDebitBatch, DirectDebitBatch.id == DirectDebitCollection.batch_id)
        .outerjoin(DirectDebitMandate, DirectDebitMandate.id == DirectDebitCollection.mandate_id)
        # A card credit's external_ref carries the bank's transaction uuid (unique, indexed).
        .outerjoin(PaymentTransaction, sa.and_(
            LedgerEntry.kind.in_(CARD_KINDS), source_ref.like(f"{CARD_PREFIX}%"),
            PaymentTransaction.trans_uuid == sa.func.substr(source_ref, len(CARD_PREFIX) + 1, UUID_LENGTH)))
        .where(LedgerEntry.kind.in_(tuple(NATURES)), LedgerEntry.entry_date >= start, LedgerEntry.entry_date <= end)
        .order_by(LedgerEntry.entry_date, LedgerEntry.id)
    )


def _uuid_after(prefix: str, reference: str | None) -> str:
    if not reference or not reference.startswith(prefix):
        return ""
    return reference[len(prefix):].split(":", 1)[0]


def _card_bank_reference(kind: EntryKind, own_ref: str | None, trans_uuid: str | None, source_ref: str | None) -> str:
    """The bank's uuid of the operation: for a reversal, the one that undid the payment when the entry says it."""
    undone_by = _uuid_after(REVERSAL_PREFIX, own_ref) if kind is EntryKind.CARD_REVERSAL else ""
    return undone_by or trans_uuid or _uuid_after(CARD_PREFIX, source_ref)


def export_rows(start: date, end: date) -> Iterator[ExportRow]:
    """The movements dated from `start` to `end` (both included), oldest first, fetched in chunks."""
    check_range(start, end)
    result = db.session.execute(_query(start, end).execution_options(yield_per=CHUNK_ROWS))
    for (entry_date, client_number, lease_number, kind, direction, amount, entry_id, label, own_ref, source_ref,
         order_id, trans_uuid, end_to_end_id, message_id, rum) in result:
        if kind in CARD_KINDS:
            reference, bank_reference, rum = order_id or "", _card_bank_reference(kind, own_ref, trans_uuid,
                                                                                  source_ref), ""
        else:
            reference, bank_reference, rum = end_to_end_id or "", message_id or "", rum or ""
        yield ExportRow(entry_date, client_number, f"L/{lease_number}", NATURES[kind], direction.name,
                        Decimal(amount).quantize(Decimal("0.01")), reference, bank_reference, rum, entry_id,
                        label or "")


# --- the CSV -------------------------------------------------------------------------------------------------------

def csv_cells(row: ExportRow) -> list[str]:
    return [spreadsheet_text(cell) for cell in (
        row.date.isoformat(), row.numero_client, row.contrat, row.nature, row.sens, f"{row.montant:.2f}",
        row.reference, row.reference_banque, row.rum, str(row.ecriture), row.libelle)]


def _writer(stream: TextIO):
    return csv.writer(stream, delimiter=";", lineterminator="\r\n")


def write_csv(stream: TextIO, start: date, end: date) -> int:
    """Write the export to a text stream (opened with newline=""); returns the number of movements written."""
    writer = _writer(stream)
    stream.write(BOM)
    writer.writerow(COLUMNS)
    count = 0
    for row in export_rows(start, end):
        writer.writerow(csv_cells(row))
        count += 1
    return count


def csv_chunks(start: date, end: date, rows_per_chunk: int = CHUNK_ROWS) -> Iterator[str]:
    """The same file as text chunks (BOM and header first), for a streamed download."""
    buffer = io.StringIO()
    writer = _writer(buffer)
    buffer.write(BOM)
    writer.writerow(COLUMNS)
    for count, row in enumerate(export_rows(start, end), 1):
        writer.writerow(csv_cells(row))
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def filename(start: date, end: date) -> str:
    return f"export-comptable-{start.isoformat()}-{end.isoformat()}.csv"
