"""The bank's answers to our SEPA direct-debit files, read into plain records: pain.002 status reports, camt.054
notifications and camt.053 statements (ISO 20022). Facts: shared/REFERENCE.md section 5.

The XML is parsed by xsdata into pyiso20022's dataclasses, generated from the official XSDs, in strict mode: an
element the schema does not allow where it stands, a missing required element or a value of the wrong type is an
error. xsdata does not check element order, lengths or patterns.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from lxml import etree
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.parsers.handlers import LxmlEventHandler
from xsdata.models.datatype import XmlDate, XmlDateTime

MAX_BYTES = 20 * 1024 * 1024
PARIS = ZoneInfo("Europe/Paris")
SUPPORTED = {"pain.002": ("001.03", "001.10"), "camt.054": ("001.02", "001.08"), "camt.053": ("001.02", "001.08")}
NAMESPACE = re.compile(r"urn:iso:std:iso:20022:tech:xsd:([a-z]{4}\.\d{3})\.(\d{3}\.\d{2})")
# ISO 20022 messages never carry a DTD, and a DTD is what XXE and "billion laughs" need. NUL bytes are dropped
# before the search so that a UTF-16 or UTF-32 file cannot hide one.
DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Second line of defence behind that guard: no entity expansion, no network. Comments and processing instructions
# go too: xsdata reads an element's text before its first comment only (<MsgId>AB<!-- -->CD</MsgId> gives "AB").
SAFE_XML = dict(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True, remove_pis=True)
NOT_PROVIDED = "NOTPROVIDED"  # the EPC's placeholder for a missing end-to-end id

_CONTEXT = XmlContext()  # caches the models' metadata between files
_CONFIG = ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True,
                       fail_on_converter_warnings=True)


class BankFileError(ValueError):
    """A file we cannot read as a bank answer; the message is meant for the back-office user."""


@dataclass(frozen=True)
class AnswerLine:
    end_to_end_id: str | None
    original_message_id: str | None  # pain.002: OrgnlMsgId of the group; camt: Refs/MsgId (else the batch's)
    status: str  # "rejected", "returned", "accepted" or "other"
    reason_code: str | None  # AM04, AC04, MD06...
    amount: Decimal | None
    on: date | None  # camt: booking date; pain.002: the day (Paris time) the report was created
    creditor_id: str | None
    credit_debit: str | None = None  # camt: "CRDT" or "DBIT" seen from our account
    reversal: bool = False  # camt: RvslInd
    value_date: date | None = None  # camt: ValDt; pain.002: the requested collection date
    account_iban: str | None = None  # camt: the account the entry is booked on


@dataclass(frozen=True)
class BankAnswer:
    message_type: str  # "pain.002", "camt.054", "camt.053"
    version: str  # "001.03"...
    message_id: str
    created_at: datetime  # UTC
    original_message_id: str | None
    group_status: str | None
    account_iban: str | None  # camt: the account's IBAN when the file is about a single account
    creditor_ids: frozenset[str]
    lines: tuple[AnswerLine, ...]
    group_reason_code: str | None = None  # pain.002: why a whole file was rejected (DU01, FF01...)


def parse(data: bytes) -> BankAnswer:
    """Read a pain.002, camt.054 or camt.053 file; raise BankFileError with a French message if we cannot."""
    if not data or not data.strip():
        raise BankFileError(_("Le fichier est vide."))
    if len(data) > MAX_BYTES:
        raise BankFileError(_("Ce fichier dépasse la taille maximale de %(size)s Mo.", size=MAX_BYTES // 2**20))
    if DTD.search(data.replace(b"\x00", b"")):
        raise BankFileError(_("Ce fichier est refusé par sécurité : il contient une déclaration DOCTYPE ou ENTITY, "
                              "qu'un retour de la banque ne contient jamais."))
    try:
        root = etree.fromstring(data, etree.XMLParser(**SAFE_XML))
    except etree.XMLSyntaxError as error:
        raise BankFileError(_("Ce fichier n'est pas un fichier XML valide : %(error)s", error=error.msg)) from None
    kind, version, module = _message(root)
    try:
        document = XmlParser(config=_CONFIG, context=_CONTEXT, handler=LxmlEventHandler).parse(root, module.Document)
    except Exception as error:  # xsdata raises ParserError, ConverterError or TypeError (missing element)
        raise BankFileError(_schema_error(kind, version, module, error)) from None
    if kind == "pain.002":
        return _status_report(document, version)
    return _camt(document, kind, version)


def _message(root) -> tuple[str, str, object]:
    """The message type, version and pyiso20022 module named by the root element's namespace."""
    qname = etree.QName(root)
    match = NAMESPACE.fullmatch(qname.namespace or "")
    kind, version = match.groups() if match else ("", "")
    if version not in SUPPORTED.get(kind, ()):
        found = qname.namespace or _("élément <%(name)s> sans espace de noms", name=qname.localname)
        raise BankFileError(_("Ce fichier n'est pas un retour de la banque pris en charge (pain.002, camt.054 ou "
                              "camt.053) : %(found)s.", found=found))
    if qname.localname != "Document":  # xsdata does not look at the root's name
        raise BankFileError(_unexpected(f"{kind}.{version}", qname.localname))
    name = f"{kind}_{version}".replace(".", "_")
    return kind, version, importlib.import_module(f"pyiso20022.{kind[:4]}.{name}.{name}")


def _schema_error(kind: str, version: str, module, error: Exception) -> str:
    """A French sentence naming the element xsdata complained about, when its message names one."""
    text, message = str(error), f"{kind}.{version}"
    if unknown := re.search(r"Unknown property .*:\{[^}]*\}(\w+)$", text):
        return _unexpected(message, unknown.group(1))
    if unknown := re.search(r"Unknown attribute .*:(\w+)$", text):
        return _("Ce fichier ne respecte pas le schéma %(message)s : l'attribut %(attribute)s n'est pas attendu à "
                 "cet endroit.", message=message, attribute=unknown.group(1))
    if bad := re.search(r"Failed to convert value for `(\w+)\.(\w+)`", text):
        return _("Ce fichier ne respecte pas le schéma %(message)s : la valeur de l'élément <%(element)s> n'est pas "
                 "valide.", message=message, element=_xml_name(module, *bad.groups())[0])
    if missing := re.search(r"(\w+)\.__init__\(\) missing .*?'(\w+)'", text):
        name, is_attribute = _xml_name(module, *missing.groups())
        if is_attribute:
            return _("Ce fichier ne respecte pas le schéma %(message)s : l'attribut obligatoire %(attribute)s manque.",
                     message=message, attribute=name)
        return _("Ce fichier ne respecte pas le schéma %(message)s : l'élément obligatoire <%(element)s> manque.",
                 message=message, element=name)
    return _("Ce fichier ne respecte pas le schéma %(message)s.", message=message)


def _unexpected(message: str, element: str) -> str:
    return _("Ce fichier ne respecte pas le schéma %(message)s : l'élément <%(element)s> n'est pas attendu à cet "
             "endroit.", message=message, element=element)


def _xml_name(module, class_name: str, field_name: str) -> tuple[str, bool]:
    """The XML name of a pyiso20022 field and whether it is an attribute (xsdata's messages give Python names)."""
    model = getattr(module, class_name, None)
    for field in dataclasses.fields(model) if dataclasses.is_dataclass(model) else ():
        if field.name == field_name:
            return field.metadata.get("name", field_name), field.metadata.get("type") == "Attribute"
    return field_name, False


def _status_report(document, version: str) -> BankAnswer:
    report = document.cstmr_pmt_sts_rpt
    group = report.orgnl_grp_inf_and_sts
    created_at = _utc(report.grp_hdr.cre_dt_tm)
    lines = []
    for payment in report.orgnl_pmt_inf_and_sts:
        for tx in payment.tx_inf_and_sts:
            status, reason = _tx_status(tx, payment, group)
            ref = tx.orgnl_tx_ref
            lines.append(AnswerLine(
                end_to_end_id=tx.orgnl_end_to_end_id, original_message_id=group.orgnl_msg_id,
                status="rejected" if status == "RJCT" else "accepted" if (status or "").startswith("AC") else "other",
                reason_code=reason,
                amount=_first(_get(ref, "amt", "instd_amt", "value"), _get(ref, "intr_bk_sttlm_amt", "value")),
                on=created_at.astimezone(PARIS).date(),
                creditor_id=_creditor_id(_get(ref, "cdtr_schme_id"), any_scheme=True),
                value_date=_day(_get(ref, "reqd_colltn_dt"))))
    return BankAnswer(
        message_type="pain.002", version=version, message_id=report.grp_hdr.msg_id, created_at=created_at,
        original_message_id=group.orgnl_msg_id, group_status=_code(group.grp_sts), account_iban=None,
        creditor_ids=frozenset(line.creditor_id for line in lines if line.creditor_id), lines=tuple(lines),
        group_reason_code=_reason(group.sts_rsn_inf))


def _tx_status(tx, payment, group) -> tuple[str | None, str | None]:
    """Status and reason of a transaction; one without a status of its own takes its payment's, else the group's."""
    for status, infos in ((tx.tx_sts, tx.sts_rsn_inf), (payment.pmt_inf_sts, payment.sts_rsn_inf),
                          (group.grp_sts, group.sts_rsn_inf)):
        if status is not None:
            return _code(status), _reason(infos)
    return None, None


def _camt(document, kind: str, version: str) -> BankAnswer:
    body = document.bk_to_cstmr_dbt_cdt_ntfctn if kind == "camt.054" else document.bk_to_cstmr_stmt
    lines, ibans = [], set()
    for report in body.ntfctn if kind == "camt.054" else body.stmt:
        ibans.add(_get(report, "acct", "id", "iban"))
        for entry in report.ntry:
            # one line per transaction detail; an entry without details (a batch booked as one sum) makes one line
            details = [(d.btch, tx) for d in entry.ntry_dtls for tx in d.tx_dtls] or [(None, None)]
            lines += [_entry_line(report, entry, batch, tx, alone=len(details) == 1) for batch, tx in details]
    return BankAnswer(
        message_type=kind, version=version, message_id=body.grp_hdr.msg_id, created_at=_utc(body.grp_hdr.cre_dt_tm),
        original_message_id=None, group_status=None, account_iban=ibans.pop() if len(ibans) == 1 else None,
        creditor_ids=frozenset(line.creditor_id for line in lines if line.creditor_id), lines=tuple(lines))


def _entry_line(report, entry, batch, tx, alone: bool) -> AnswerLine:
    """One transaction of a camt entry: a debit with return information is a collection returned or refunded."""
    direction = _code(_first(_get(tx, "cdt_dbt_ind"), entry.cdt_dbt_ind))
    returned = _get(tx, "rtr_inf")
    end_to_end_id = _get(tx, "refs", "end_to_end_id")
    creditor = _get(tx, "rltd_pties", "cdtr")
    return AnswerLine(
        end_to_end_id=None if end_to_end_id == NOT_PROVIDED else end_to_end_id,
        original_message_id=_first(_get(tx, "refs", "msg_id"), _get(batch, "msg_id")),
        status="returned" if returned and direction == "DBIT" else "other",
        reason_code=_first(_get(returned, "rsn", "cd"), _get(returned, "rsn", "prtry")),
        amount=_first(_get(tx, "amt", "value"), _get(tx, "amt_dtls", "tx_amt", "amt", "value"),
                      _get(tx, "amt_dtls", "instd_amt", "amt", "value"), entry.amt.value if alone else None),
        on=_day(entry.bookg_dt),
        creditor_id=_creditor_id(getattr(creditor, "pty", creditor)),  # the 2019 versions wrap the party in <Pty>
        credit_debit=direction, reversal=bool(entry.rvsl_ind), value_date=_day(entry.val_dt),
        account_iban=_get(report, "acct", "id", "iban"))


def _get(value, *names):
    """value.a.b.c, or None as soon as a step is missing (an optional element, or a field this version lacks)."""
    for name in names:
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def _first(*values):
    return next((v for v in values if v is not None), None)


def _code(value) -> str | None:
    """A code as text: older versions type codes as enums, newer ones as plain strings."""
    return getattr(value, "value", value)


def _reason(infos) -> str | None:
    """The code of the first status reason given (ISO code, else the bank's proprietary one)."""
    return next((_first(i.rsn.cd, i.rsn.prtry) for i in infos if i.rsn), None)


def _creditor_id(party, any_scheme: bool = False) -> str | None:
    """A party's creditor identifier (ICS): a private Othr id of scheme "SEPA" (any scheme under CdtrSchmeId)."""
    return next((other.id for other in _get(party, "id", "prvt_id", "othr") or ()
                 if any_scheme or _get(other, "schme_nm", "prtry") == "SEPA"), None)


def _utc(value) -> datetime:
    moment = value.to_datetime()
    if moment.tzinfo is None:  # French banks often write local time without an offset
        moment = moment.replace(tzinfo=PARIS)
    return moment.astimezone(timezone.utc)


def _day(value) -> date | None:
    """A date from an XmlDate, an XmlDateTime (its day in Paris) or a Dt/DtTm choice."""
    if value is None:
        return None
    if isinstance(value, XmlDate):
        return value.to_date()
    if isinstance(value, XmlDateTime):
        return _utc(value).astimezone(PARIS).date()
    return _day(_first(value.dt, value.dt_tm))
