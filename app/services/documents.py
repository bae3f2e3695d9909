"""Tenant documents: due notices, receipts (quittance or reçu), yearly charge statements, rent certificates.

Generated documents are rendered once, stored in the file store (app.filestore) under a random name, then served
from there; a file missing from the store is rendered again. A quittance is issued only for a fully paid month
(the ledger's settlement says so); a partial payment gets a reçu, rendered on demand and never stored since it
changes with each payment.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from flask import current_app
from flask_babel import format_date, gettext as _

from app import filestore
from app.extensions import db
from app.mail import external_url
from app.models import (
    ZERO, ChargeStatement, DirectDebitMandate, Document, DocumentKind, EntryKind, Household, Lease, RentCertificate,
    UnitKind,
)
from app.pdf import render_pdf
from app.services import ledger

GENERATED = (DocumentKind.DUE_NOTICE, DocumentKind.RECEIPT, DocumentKind.CHARGE_STATEMENT)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


class DocumentUnavailable(LookupError):
    """The document cannot be produced; the message says why, for the tenant."""


def period_label(period: str) -> str:
    year, month = (int(part) for part in period.split("-"))
    return format_date(date(year, month, 1), "MMMM yyyy")


def period_date(period: str) -> date:
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1)


# --- storage -----------------------------------------------------------------------------------------------------

FOLDER = "documents"  # the key prefix of documents in the file store (their folder under FILES_DIR)


def stored_key(document) -> str | None:
    """The document's key in the file store ("documents/<stored name>"), None if it has no file."""
    return f"{FOLDER}/{document.stored_name}" if document.stored_name else None


stored_path = stored_key  # the older name


def store_pdf(document: Document, pdf: bytes, filename: str) -> str:
    """Store `pdf` (encrypted, under a random name) as the file of `document`; returns its key."""
    document.stored_name = f"{secrets.token_hex(16)}.pdf"
    document.original_filename = filename
    document.content_type = "application/pdf"
    document.size_bytes = len(pdf)
    document.sha256 = hashlib.sha256(pdf).hexdigest()
    key = stored_key(document)
    filestore.save(key, pdf)
    return key


def ensure_file(document: Document) -> str:
    """The key of the document's file, rendered (again) when the store does not have it."""
    key = stored_key(document)
    if key is not None and filestore.exists(key):
        return key
    if document.kind is DocumentKind.SEPA_MANDATE and document.mandate_id:
        from app.services.sepa import mandate_pdf

        mandate = db.session.get(DirectDebitMandate, document.mandate_id)
        key = store_pdf(document, mandate_pdf(mandate), f"mandat-sepa-{mandate.reference}.pdf")
        db.session.commit()
        return key
    if document.kind not in GENERATED or document.lease is None:
        raise DocumentUnavailable(_("Ce document n'est plus disponible. Contactez votre agence, elle vous en "
                                    "enverra une copie."))
    pdf, filename = _render(document)
    key = store_pdf(document, pdf, filename)
    db.session.commit()
    return key


def _render(document: Document) -> tuple[bytes, str]:
    lease, period = document.lease, document.period
    if document.kind is DocumentKind.DUE_NOTICE:
        return due_notice_pdf(lease, period), f"avis-echeance-{period}-L{lease.number}.pdf"
    if document.kind is DocumentKind.CHARGE_STATEMENT:
        return charge_statement_pdf(lease, int(period)), f"regularisation-charges-{period}-L{lease.number}.pdf"
    status = ledger.month_statuses(ledger.lease_entries([lease.id])).get((lease.id, period))
    if status is None or not status.settled:
        raise DocumentUnavailable(_("Ce mois n'est pas entièrement payé : la quittance n'est pas disponible."))
    return receipt_pdf(lease, status), f"quittance-{period}-L{lease.number}.pdf"


def regenerate(household_id: int, everything: bool = False) -> int:
    """Render again a household's stored generated documents (the CLI `regenerate-documents`); with `everything`,
    also those never downloaded yet (otherwise they are rendered on their first download)."""
    query = sa.select(Document).where(
        Document.household_id == household_id, Document.kind.in_(GENERATED), Document.lease_id.is_not(None))
    if not everything:
        query = query.where(Document.stored_name.is_not(None))
    documents = db.session.scalars(query)
    count = 0
    for document in documents:
        old = stored_key(document)
        try:
            pdf, filename = _render(document)
        except DocumentUnavailable:
            continue
        store_pdf(document, pdf, filename)
        if old is not None:
            filestore.delete(old)
        count += 1
    db.session.commit()
    return count


# --- rendering ---------------------------------------------------------------------------------------------------

def due_notice_pdf(lease: Lease, period: str) -> bytes:
    from app.services.direct_debits import collection_for

    entries = ledger.lease_entries([lease.id])
    notice = next((e for e in entries if e.kind is EntryKind.DUE_NOTICE and e.period == period), None)
    if notice is None:
        raise DocumentUnavailable(_("Aucun avis d'échéance n'existe pour ce mois."))
    benefit = sum((e.amount for e in entries if e.kind is EntryKind.HOUSING_BENEFIT and e.period == period), ZERO)
    previous = ledger.balance_before(entries, lease.id, notice.entry_date, notice.id)
    net = previous + notice.amount - benefit
    return render_pdf("pdf/due_notice.html", lease=lease, household=lease.household, notice=notice,
                      period=period_label(period), benefit=benefit, previous=previous, net=net,
                      debit=collection_for(lease.id, period), creditor_id=current_app.config["SEPA_CREDITOR_ID"],
                      portal_url=current_app.config["PUBLIC_BASE_URL"])


def receipt_pdf(lease: Lease, status: ledger.MonthStatus) -> bytes:
    """A quittance for a settled month, a reçu otherwise (never a false quittance)."""
    return render_pdf("pdf/receipt.html", lease=lease, household=lease.household, status=status,
                      period=period_label(status.period), first_day=period_date(status.period),
                      quittance=status.settled)


def charge_statement_pdf(lease: Lease, year: int) -> bytes:
    statement = db.session.scalar(sa.select(ChargeStatement).where(
        ChargeStatement.lease_id == lease.id, ChargeStatement.year == year))
    if statement is None:
        raise DocumentUnavailable(_("Aucune régularisation des charges n'existe pour cette année."))
    return render_pdf("pdf/charge_statement.html", lease=lease, household=lease.household, statement=statement)


# --- the Documents page --------------------------------------------------------------------------------------------

def valid_period(period: str) -> bool:
    return len(period) == 7 and period[4] == "-" and period[:4].isdigit() and period[5:].isdigit() \
        and 1 <= int(period[5:]) <= 12


@dataclass
class DocumentItem:
    title: str
    year: str
    sort_key: str
    lease_number: str
    endpoint: str
    args: dict


def household_documents(household: Household) -> dict[str, list[tuple[str, list[DocumentItem]]]]:
    """The household's documents by section and year, newest first: stored documents (one query) and the receipts
    its payments allow (one query on the ledger)."""
    leases = {lease.id: lease for lease in household.leases}
    sections: dict[str, list[DocumentItem]] = {"due_notices": [], "receipts": [], "statements": [], "other": []}
    for document in db.session.scalars(sa.select(Document).where(Document.household_id == household.id)):
        lease = leases.get(document.lease_id)
        section = {DocumentKind.DUE_NOTICE: "due_notices", DocumentKind.CHARGE_STATEMENT: "statements"}.get(
            document.kind, "other")
        if document.kind is DocumentKind.RECEIPT:
            continue  # listed from the ledger below, whether stored yet or not
        if section == "other" and not document.stored_name and document.kind is not DocumentKind.SEPA_MANDATE:
            continue  # an uploaded document whose file is gone; a mandate is rendered on demand
        year = (document.period or f"{document.created_at:%Y}")[:4]
        sections[section].append(DocumentItem(
            document.title, year, document.period or f"{document.created_at:%Y-%m}",
            lease.display_number if lease else "", "TenantDocumentsView.download", {"document_id": document.id}))
    for (lease_id, period), status in ledger.month_statuses(ledger.lease_entries(list(leases))).items():
        if status.receipt_kind is None:
            continue
        label = _("Quittance %(month)s", month=period_label(period)) if status.settled else \
            _("Reçu %(month)s (paiement partiel)", month=period_label(period))
        sections["receipts"].append(DocumentItem(label, period[:4], period, leases[lease_id].display_number,
                                                 "TenantDocumentsView.receipt",
                                                 {"lease_id": lease_id, "period": period}))
    grouped = {}
    for name, items in sections.items():
        items.sort(key=lambda item: (item.sort_key, item.lease_number), reverse=True)
        years: dict[str, list[DocumentItem]] = {}
        for item in items:
            years.setdefault(item.year, []).append(item)
        grouped[name] = list(years.items())
    return grouped


# --- what the tenant asks for ------------------------------------------------------------------------------------

@dataclass
class Receipt:
    """A receipt to hand over: a stored quittance (`key`, in the file store) or a reçu rendered now (`pdf`)."""

    filename: str
    key: str | None = None
    pdf: bytes | None = None


def receipt_for(lease: Lease, period: str) -> Receipt:
    status = ledger.month_statuses(ledger.lease_entries([lease.id])).get((lease.id, period))
    if status is None or status.receipt_kind is None:
        raise DocumentUnavailable(_("Aucun paiement n'a été reçu pour ce mois : il n'y a ni quittance ni reçu."))
    if not status.settled:
        return Receipt(f"recu-{period}-L{lease.number}.pdf", pdf=receipt_pdf(lease, status))
    document = db.session.scalar(sa.select(Document).where(
        Document.lease_id == lease.id, Document.kind == DocumentKind.RECEIPT, Document.period == period))
    if document is None:
        document = Document(household_id=lease.household_id, lease_id=lease.id, kind=DocumentKind.RECEIPT,
                            period=period, title=_("Quittance de loyer %(month)s", month=period_label(period)))
        db.session.add(document)
        db.session.flush()
    return Receipt(f"quittance-{period}-L{lease.number}.pdf", key=ensure_file(document))


def forget_rendered_due_notices(lease_periods: list[tuple[int, str]]) -> None:
    """Due notices rendered before something they print changed (a direct debit announced since): their files go,
    and the next download renders them again. The caller owns the transaction."""
    if not lease_periods:
        return
    pairs = set(lease_periods)
    for document in db.session.scalars(sa.select(Document).where(
            Document.kind == DocumentKind.DUE_NOTICE, Document.stored_name.is_not(None),
            Document.lease_id.in_({lease_id for lease_id, _period in pairs}),
            Document.period.in_({period for _lease, period in pairs}))):
        if (document.lease_id, document.period) in pairs:
            filestore.delete(stored_key(document))
            document.stored_name = None


def withdraw_unsettled_quittances(lease_ids: list[int]) -> int:
    """After a payment was reversed: remove the stored quittances of months that are no longer fully paid (row and
    file), so the tenant's Documents page offers a reçu or nothing instead. The caller owns the transaction."""
    stored = db.session.scalars(sa.select(Document).where(
        Document.lease_id.in_(lease_ids), Document.kind == DocumentKind.RECEIPT)).all()
    if not stored:
        return 0
    statuses = ledger.month_statuses(ledger.lease_entries(lease_ids))
    withdrawn = 0
    for document in stored:
        status = statuses.get((document.lease_id, document.period))
        if status is not None and status.settled:
            continue
        if document.stored_name:
            filestore.delete(stored_key(document))
        db.session.delete(document)
        withdrawn += 1
    return withdrawn


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def rent_certificate(household: Household, today: date) -> tuple[RentCertificate, bytes]:
    """An « attestation de loyer à jour », only for a household with no overdue amount and a current lease."""
    overdue = ledger.household_overdue(household.id, today)
    if overdue > ZERO:
        from app.formatting import money

        raise DocumentUnavailable(_("Votre compte présente un retard de paiement de %(amount)s. L'attestation sera "
                                    "disponible dès que ce montant sera réglé.", amount=money(overdue)))
    leases = [lease for lease in household.leases if lease.end_date is None or lease.end_date >= today]
    if not leases:
        raise DocumentUnavailable(_("Vous n'avez plus de contrat en cours : l'attestation n'est pas disponible."))
    certificate = RentCertificate(household_id=household.id, code=_new_code(), holder_name=household.signatory_name,
                                  issued_on=today)
    db.session.add(certificate)
    db.session.flush()
    dwelling = next((lease for lease in leases if lease.unit.kind is UnitKind.DWELLING), leases[0])
    pdf = render_pdf("pdf/rent_certificate.html", household=household, lease=dwelling, certificate=certificate,
                     check_url=external_url("CertificateCheckView.check"),
                     balance=ledger.household_balance(household.id))
    db.session.commit()
    return certificate, pdf


def find_certificate(code: str) -> RentCertificate | None:
    normalized = "".join(c for c in (code or "").upper() if c.isalnum())
    if len(normalized) != 12:
        return None
    formatted = f"{normalized[:4]}-{normalized[4:8]}-{normalized[8:]}"
    return db.session.scalar(sa.select(RentCertificate).where(RentCertificate.code == formatted))
