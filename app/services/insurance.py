"""Home-insurance certificates: tenants send them (PDF, checked by content), staff validate within 48 hours, a job
reminds tenants before and at expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import format_datetime, gettext as _

from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import Household, InsuranceCertificate, ReviewStatus
from app.services import uploads
from app.services.requests import dwelling_lease

COMMON_INSURERS = ["MAIF", "MACIF", "MAAF", "MATMUT", "GMF", "Groupama", "AXA", "Allianz", "Generali",
                   "Crédit Agricole Assurances (Pacifica)", "BNP Paribas Cardif", "Société Générale Assurances",
                   "Crédit Mutuel - CIC Assurances (ACM)", "Banque Populaire - Caisse d'Épargne (BPCE Assurances)",
                   "La Banque Postale Assurances", "Direct Assurance", "Leocare", "Luko / Allianz"]
REVIEW_TARGET = timedelta(hours=48)
REMINDER_DAYS = 30


class InsuranceError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Submission:
    insurer: str
    policy_number: str
    start_date: date
    end_date: date


def status(household: Household, today: date) -> tuple[str, InsuranceCertificate | None]:
    """'valid', 'pending', 'expired' or 'missing', with the certificate that says so (one query)."""
    certificates = sorted(db.session.scalars(sa.select(InsuranceCertificate).where(
        InsuranceCertificate.household_id == household.id)), key=lambda c: c.end_date, reverse=True)
    valid = next((c for c in certificates if c.status is ReviewStatus.VALIDATED and c.end_date >= today), None)
    if valid:
        return "valid", valid
    pending = next((c for c in certificates if c.status in (ReviewStatus.PENDING, ReviewStatus.INFO_REQUESTED)),
                   None)
    if pending:
        return "pending", pending
    return ("expired", certificates[0]) if certificates else ("missing", None)


def latest(household: Household) -> InsuranceCertificate | None:
    return db.session.scalar(sa.select(InsuranceCertificate).where(InsuranceCertificate.household_id == household.id)
                             .order_by(InsuranceCertificate.created_at.desc(), InsuranceCertificate.id.desc()))


def submit(household: Household, data: Submission, file_storage, now: datetime) -> InsuranceCertificate:
    lease = dwelling_lease(household)
    if lease is None:
        raise InsuranceError(_("Vous n'avez pas de logement en cours : aucune attestation n'est demandée."))
    if not data.insurer.strip():
        raise InsuranceError(_("Indiquez votre assureur."), "insurer")
    if data.end_date <= data.start_date:
        raise InsuranceError(_("La date de fin doit être après la date de début."), "end_date")
    if data.end_date < now.date():
        raise InsuranceError(_("Cette attestation est déjà expirée. Envoyez l'attestation en cours de validité."),
                             "end_date")
    try:
        checked = uploads.check(file_storage, (uploads.PDF,))
    except uploads.UploadError as error:
        raise InsuranceError(str(error), "document") from None
    certificate = InsuranceCertificate(
        household_id=household.id, lease_id=lease.id, insurer=data.insurer.strip()[:120],
        policy_number=data.policy_number.strip()[:60], start_date=data.start_date, end_date=data.end_date,
        status=ReviewStatus.PENDING, created_at=now)
    uploads.store(checked, certificate)
    db.session.add(certificate)
    db.session.commit()
    return certificate


def decide(certificate: InsuranceCertificate, decision: ReviewStatus, reason: str, now: datetime,
           staff_id: int) -> None:
    if decision not in (ReviewStatus.VALIDATED, ReviewStatus.REFUSED, ReviewStatus.INFO_REQUESTED):
        raise InsuranceError(_("Choisissez une décision."), "decision")
    if decision is not ReviewStatus.VALIDATED and not reason.strip():
        raise InsuranceError(_("Indiquez le motif : il sera envoyé au locataire."), "reason")
    # Only a certificate still waiting is decided: its row is read again under a lock (PostgreSQL), so a colleague
    # who decided it meanwhile, even at the same moment, wins and this decision is refused with who and when.
    db.session.refresh(certificate, with_for_update=True)
    if certificate.status is not ReviewStatus.PENDING:
        who = certificate.decided_by.get_full_name() if certificate.decided_by else _("un autre agent")
        when = format_datetime(certificate.decided_at, "short") if certificate.decided_at else "—"
        status = certificate.status.label
        db.session.rollback()
        raise InsuranceError(_("Cette attestation a déjà été traitée (%(status)s) par %(who)s le %(when)s. "
                               "Rien n'a été changé.", status=status, who=who, when=when), "decision")
    certificate.status, certificate.decision_reason = decision, reason.strip() or None
    certificate.decided_at, certificate.decided_by_id = now, staff_id
    account = certificate.household.account
    if account is not None and account.user.active:
        queue_mail(account.user.email, "insurance_decision", account.locale, name=account.user.first_name,
                   status=str(decision.label), validated=decision is ReviewStatus.VALIDATED,
                   reason=certificate.decision_reason, end=certificate.end_date,
                   link=external_url("TenantContractView.insurance"))
    db.session.commit()


def send_reminders(now: datetime) -> int:
    """The daily job: a reminder 30 days before a validated certificate expires, and a notice on expiry, each sent
    once, and only when no newer certificate was sent for the lease."""
    today = now.date()
    outer = sa.orm.aliased(InsuranceCertificate, name="ic")
    newer = sa.exists().where(InsuranceCertificate.lease_id == outer.lease_id,
                              InsuranceCertificate.created_at > outer.created_at)
    candidates = db.session.scalars(sa.select(outer).where(
        outer.status == ReviewStatus.VALIDATED, ~newer,
        sa.or_(sa.and_(outer.reminder_sent_on.is_(None), outer.end_date <= today + timedelta(days=REMINDER_DAYS),
                       outer.end_date >= today),
               sa.and_(outer.expiry_notice_sent_on.is_(None), outer.end_date < today)))).all()
    sent = 0
    for certificate in candidates:
        account = certificate.household.account
        expired = certificate.end_date < today
        if account is not None and account.user.active:
            queue_mail(account.user.email, "insurance_expired" if expired else "insurance_reminder", account.locale,
                       name=account.user.first_name, end=certificate.end_date,
                       link=external_url("TenantContractView.insurance"))
            sent += 1
        if expired:
            certificate.expiry_notice_sent_on = today
        certificate.reminder_sent_on = certificate.reminder_sent_on or today
    db.session.commit()
    return sent
