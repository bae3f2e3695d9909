"""SEPA Core direct debit mandates: bank details, subscription (which leases the mandate covers), the mandate PDF,
staff activation and refusal, lapse. The monthly money cycle (pre-notification, collection file, settlement,
rejects, the bank's answers) is app.services.direct_debits. Facts: shared/REFERENCE.md section 2.

The full IBAN is stored for the collection file but only ever shown masked, and never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02

from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import DirectDebitMandate, Document, DocumentKind, Household, Lease, MandateStatus

log = logging.getLogger(__name__)
DEBIT_DAYS = (2, 7, 10)
LAPSE_AFTER = relativedelta(months=36)
OPEN_STATUSES = (MandateStatus.PENDING_SIGNATURE, MandateStatus.ACTIVE)


class SepaError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def creditor_id_problem(creditor_id: str | None) -> str | None:
    """Why an ICS is not valid (French: 13 characters FRkkZZZnnnnnn, ISO 7064 check digits), or None."""
    value = (creditor_id or "").replace(" ", "").upper()
    if not value.startswith("FR") or len(value) != 13:
        return "a French creditor identifier has 13 characters, like FR72ZZZ123456"
    if not at_02.is_valid(value):
        return "its check digits are wrong"
    return None


def check_bank_details(iban_text: str, bic_text: str | None) -> tuple[str, str | None, str | None]:
    """(compact IBAN, BIC, bank name) for a SEPA account, or SepaError with a message for the tenant."""
    try:
        iban = IBAN(iban_text or "", validate_bban=True)
    except SchwiftyException as exc:
        name = type(exc).__name__
        if name == "InvalidBBANChecksum":
            message = _("La clé RIB de cet IBAN est fausse. Recopiez-le depuis votre RIB.")
        elif name in ("InvalidCountryCode",):
            message = _("Ce pays n'est pas reconnu. Un IBAN commence par deux lettres, par exemple FR76.")
        else:
            message = _("Cet IBAN n'est pas valide. Recopiez-le depuis votre RIB, par exemple FR76 3000 4000 ...")
        raise SepaError(message, "iban") from None
    if not iban.in_sepa_zone:
        raise SepaError(_("Ce compte n'est pas dans la zone SEPA : le prélèvement n'est pas possible."), "iban")
    bic = iban.bic
    if bic_text and bic_text.strip():
        try:
            given = BIC(bic_text.strip())
        except SchwiftyException:
            raise SepaError(_("Ce BIC n'est pas valide (8 ou 11 caractères, par exemple BNPAFRPP)."), "bic") from None
        if bic is not None and str(given)[:8] != str(bic)[:8]:
            raise SepaError(_("Ce BIC ne correspond pas à la banque de cet IBAN."), "bic")
        bic = given
    bank_name = None
    try:
        bank_name = iban.bank_name
    except (AttributeError, SchwiftyException):
        pass
    return iban.compact, str(bic) if bic is not None else None, bank_name


def new_reference(household: Household, lease: Lease) -> str:
    """A RUM: unique, at most 35 characters, letters, digits and hyphens only, never derived from the IBAN."""
    count = db.session.scalar(sa.select(sa.func.count(DirectDebitMandate.id)).where(
        DirectDebitMandate.lease_id == lease.id)) or 0
    while True:
        count += 1
        reference = f"EL-{household.client_number}-{lease.number}-{count}"
        if db.session.scalar(sa.select(DirectDebitMandate.id).where(
                DirectDebitMandate.reference == reference)) is None:
            return reference


def current_mandates(household: Household) -> list[DirectDebitMandate]:
    return list(db.session.scalars(sa.select(DirectDebitMandate).where(
        DirectDebitMandate.household_id == household.id).order_by(DirectDebitMandate.created_at.desc())))


@dataclass
class Subscription:
    iban: str
    bic: str
    account_holder: str
    street: str
    postcode: str
    city: str
    debit_day: int
    consent: bool
    lease_ids: list[int] = field(default_factory=list)  # empty: every current lease of the household


def active_leases(household: Household) -> list[Lease]:
    return [lease for lease in household.leases if lease.is_active]


def _covered(household: Household, lease_ids: list[int]) -> list[Lease]:
    leases = active_leases(household)
    if not lease_ids:
        return leases
    chosen = [lease for lease in leases if lease.id in set(lease_ids)]
    if len(chosen) != len(set(lease_ids)):
        raise SepaError(_("Choisissez parmi vos contrats en cours."), "leases")
    return chosen


def check_subscription(household: Household, data: Subscription, replacing: bool) -> dict:
    """Everything but the file: returns the cleaned values for the review step."""
    if data.debit_day not in DEBIT_DAYS:
        raise SepaError(_("Choisissez le 2, le 7 ou le 10 du mois."), "debit_day")
    leases = _covered(household, data.lease_ids)
    if not leases:
        raise SepaError(_("Vous n'avez plus de contrat en cours."), "leases")
    mandates = current_mandates(household)
    if any(m.status is MandateStatus.PENDING_SIGNATURE for m in mandates):
        raise SepaError(_("Un mandat attend déjà votre signature. Renvoyez-le signé à votre agence ou contactez-la."))
    if not replacing and any(m.status is MandateStatus.ACTIVE for m in mandates):
        raise SepaError(_("Le prélèvement est déjà en place. Pour changer de compte, utilisez « Mettre à jour le RIB »."))
    if replacing and not any(m.status is MandateStatus.ACTIVE for m in mandates):
        raise SepaError(_("Vous n'avez pas de prélèvement en place à modifier."))
    if not data.consent:
        raise SepaError(_("Vous devez accepter le prélèvement pour continuer."), "consent")
    iban, bic, bank_name = check_bank_details(data.iban, data.bic)
    if not data.account_holder.strip():
        raise SepaError(_("Indiquez le titulaire du compte."), "account_holder")
    return {"iban": iban, "bic": bic, "bank_name": bank_name, "account_holder": data.account_holder.strip()[:140],
            "street": data.street.strip()[:140], "postcode": data.postcode.strip()[:16],
            "city": data.city.strip()[:100], "debit_day": data.debit_day,
            "lease_ids": [lease.id for lease in leases]}


def subscribe(household: Household, values: dict, rib_name: str, rib_meta: dict, now: datetime,
              replacing: bool) -> DirectDebitMandate:
    """Create the mandate waiting for its signature, its PDF document, and mail the instructions."""
    checked = check_subscription(household, Subscription(
        values["iban"], values["bic"] or "", values["account_holder"], values["street"], values["postcode"],
        values["city"], values["debit_day"], True, values.get("lease_ids") or []), replacing)
    leases = _covered(household, checked["lease_ids"])
    dwelling = _dwelling(household)
    lease = dwelling if dwelling in leases else leases[0]
    active = next((m for m in current_mandates(household) if m.status is MandateStatus.ACTIVE), None)
    mandate = DirectDebitMandate(
        reference=new_reference(household, lease), household_id=household.id, lease_id=lease.id,
        iban=values["iban"], bic=values["bic"], bank_name=values["bank_name"],
        account_holder=values["account_holder"], holder_street=values["street"], holder_postcode=values["postcode"],
        holder_city=values["city"], debit_day=values["debit_day"], status=MandateStatus.PENDING_SIGNATURE,
        consent_at=now, replaces_id=active.id if (replacing and active) else None, created_at=now,
        stored_name=rib_name, leases=leases, **rib_meta)
    db.session.add(mandate)
    db.session.flush()
    db.session.add(Document(household_id=household.id, lease_id=lease.id, kind=DocumentKind.SEPA_MANDATE,
                            mandate_id=mandate.id, title=_("Mandat de prélèvement SEPA %(rum)s",
                                                           rum=mandate.reference), created_at=now))
    account = household.account
    if account is not None:
        queue_mail(account.user.email, "mandate_to_sign", account.locale, name=account.user.first_name,
                   rum=mandate.reference, agency=household.agency.name, address=household.agency.address,
                   link=external_url("TenantDocumentsView.index"))
        if replacing:
            queue_mail(account.user.email, "bank_details_changed", account.locale, name=account.user.first_name,
                       iban=mandate.masked_iban)
    db.session.commit()
    return mandate


def _dwelling(household: Household) -> Lease:
    from app.services.requests import dwelling_lease

    lease = dwelling_lease(household) or next((l for l in household.leases if l.is_active), None)
    if lease is None:
        raise SepaError(_("Vous n'avez plus de contrat en cours."))
    return lease


def mandate_pdf(mandate: DirectDebitMandate) -> bytes:
    from app.pdf import render_pdf

    config = current_app.config
    creditor = {"name": config["SEPA_CREDITOR_NAME"], "id": config["SEPA_CREDITOR_ID"],
                "street": config["SEPA_CREDITOR_STREET"],
                "town": f'{config["SEPA_CREDITOR_POSTCODE"]} {config["SEPA_CREDITOR_TOWN"]}'}
    return render_pdf("pdf/sepa_mandate.html", mandate=mandate, household=mandate.household, creditor=creditor,
                      prenotification_days=config["SEPA_PRENOTIFICATION_DAYS"])


# --- staff ---------------------------------------------------------------------------------------------------------

def _still_waiting(mandate: DirectDebitMandate) -> None:
    """Read the mandate again under a lock (PostgreSQL): a colleague who decided it meanwhile wins."""
    db.session.refresh(mandate, with_for_update=True)
    if mandate.status is not MandateStatus.PENDING_SIGNATURE:
        status = mandate.status.label
        db.session.rollback()
        raise SepaError(_("Ce mandat n'attend plus de signature (%(status)s) : un collègue l'a sans doute déjà "
                          "traité. Rien n'a été changé.", status=status), None)


def activate(mandate: DirectDebitMandate, signed_on: date, now: datetime) -> None:
    _still_waiting(mandate)
    if signed_on > now.date() or signed_on < mandate.created_at.date() - timedelta(days=1):
        raise SepaError(_("La date de signature doit être entre la demande et aujourd'hui."), "signed_on")
    mandate.status, mandate.signed_on, mandate.activated_at = MandateStatus.ACTIVE, signed_on, now
    if mandate.replaces_id:
        old = db.session.get(DirectDebitMandate, mandate.replaces_id)
        if old is not None and old.status is MandateStatus.ACTIVE:
            old.status = MandateStatus.REPLACED
    _tell(mandate, _("Votre prélèvement automatique est actif. Le premier prélèvement aura lieu le %(day)s du mois.",
                     day=mandate.debit_day))
    db.session.commit()


def refuse(mandate: DirectDebitMandate, reason: str, now: datetime) -> None:
    _still_waiting(mandate)
    if not reason.strip():
        raise SepaError(_("Indiquez le motif : il sera envoyé au locataire."), "reason")
    mandate.status, mandate.decision_reason = MandateStatus.REFUSED, reason.strip()
    _tell(mandate, _("Votre mandat de prélèvement n'a pas pu être activé : %(reason)s", reason=reason.strip()))
    db.session.commit()


def _tell(mandate: DirectDebitMandate, message: str) -> None:
    account = mandate.household.account
    if account is not None and account.user.active:
        queue_mail(account.user.email, "mandate_status", account.locale, name=account.user.first_name,
                   rum=mandate.reference, status=str(mandate.status.label), message=message,
                   link=external_url("TenantPaymentView.index"))




def lapse_unused(now: datetime) -> int:
    """The monthly job: an active mandate with no collection for 36 months lapses (in one statement)."""
    cutoff = now.date() - LAPSE_AFTER
    last_use = sa.func.coalesce(DirectDebitMandate.last_collection_on, DirectDebitMandate.signed_on)
    result = db.session.execute(sa.update(DirectDebitMandate).where(
        DirectDebitMandate.status == MandateStatus.ACTIVE, last_use < cutoff).values(status=MandateStatus.LAPSED))
    db.session.commit()
    return result.rowcount or 0
