"""The data model of a social landlord's tenant relations.

Money is `Numeric(12, 2)` read as `Decimal`; timestamps are stored in UTC (`UTCDateTime`) and shown in
Europe/Paris by the formatting helpers. Every object a tenant may see carries `household_id`, which is what the
household scope (`app.security.scope`) filters on.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

import sqlalchemy as sa
from flask_appbuilder import Model
from flask_appbuilder.security.sqla.models import User
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.dbtypes import EncryptedString, UTCDateTime

# Named constraints keep later migrations (SQLite batch mode included) predictable. Flask-AppBuilder's own tables
# are attached before this line and keep their names.
Model.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = sa.Numeric(12, 2)
ZERO = Decimal("0.00")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LabelledEnum(enum.Enum):
    """An enum stored by name whose members carry a translatable label for screens."""

    @property
    def label(self) -> str:
        return self._labels().get(self.name, self.value)  # type: ignore[attr-defined]

    @classmethod
    def _labels(cls) -> dict:
        return {}

    def __str__(self) -> str:
        return str(self.label)


def enum_column(enum_class: type[enum.Enum], **kwargs) -> sa.Enum:
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=32,
        **kwargs,
    )


class UnitKind(LabelledEnum):
    DWELLING = "dwelling"
    PARKING = "parking"
    GARAGE = "garage"
    COMMERCIAL = "commercial"

    @classmethod
    def _labels(cls):
        return {"DWELLING": _l("Logement"), "PARKING": _l("Stationnement"), "GARAGE": _l("Garage"),
                "COMMERCIAL": _l("Local commercial")}


class ProfessionalSituation(LabelledEnum):
    EMPLOYED = "employed"
    SELF_EMPLOYED = "self_employed"
    JOB_SEEKER = "job_seeker"
    RETIRED = "retired"
    STUDENT = "student"
    OTHER = "other"

    @classmethod
    def _labels(cls):
        return {"EMPLOYED": _l("Salarié"), "SELF_EMPLOYED": _l("Indépendant"), "JOB_SEEKER": _l("Demandeur d'emploi"),
                "RETIRED": _l("Retraité"), "STUDENT": _l("Étudiant"), "OTHER": _l("Autre situation")}


class Civility(LabelledEnum):
    MADAME = "mme"
    MONSIEUR = "m"

    @classmethod
    def _labels(cls):
        return {"MADAME": _l("Madame"), "MONSIEUR": _l("Monsieur")}


class OccupantRelation(LabelledEnum):
    SIGNATORY = "signatory"
    SPOUSE = "spouse"
    CHILD = "child"
    RELATIVE = "relative"
    OTHER = "other"

    @classmethod
    def _labels(cls):
        return {"SIGNATORY": _l("Signataire"), "SPOUSE": _l("Conjoint"), "CHILD": _l("Enfant"),
                "RELATIVE": _l("Parent"), "OTHER": _l("Autre occupant")}


class EntryKind(LabelledEnum):
    DUE_NOTICE = "due_notice"
    CARD_PAYMENT = "card_payment"
    DIRECT_DEBIT = "direct_debit"
    TRANSFER = "transfer"
    CHEQUE = "cheque"
    HOUSING_BENEFIT = "housing_benefit"
    REGULARISATION = "regularisation"
    REJECT = "reject"
    CARD_REVERSAL = "card_reversal"

    @classmethod
    def _labels(cls):
        return {"DUE_NOTICE": _l("Avis d'échéance"), "CARD_PAYMENT": _l("Paiement par carte"),
                "DIRECT_DEBIT": _l("Prélèvement"), "TRANSFER": _l("Virement"), "CHEQUE": _l("Chèque"),
                "HOUSING_BENEFIT": _l("APL versée par la CAF"), "REGULARISATION": _l("Régularisation des charges"),
                "REJECT": _l("Rejet de prélèvement"), "CARD_REVERSAL": _l("Annulation de paiement par carte")}


class Direction(LabelledEnum):
    DEBIT = "debit"
    CREDIT = "credit"

    @classmethod
    def _labels(cls):
        return {"DEBIT": _l("Débit"), "CREDIT": _l("Crédit")}


class DocumentKind(LabelledEnum):
    DUE_NOTICE = "due_notice"
    RECEIPT = "receipt"
    CHARGE_STATEMENT = "charge_statement"
    SEPA_MANDATE = "sepa_mandate"
    RENT_CERTIFICATE = "rent_certificate"
    OTHER = "other"

    @classmethod
    def _labels(cls):
        return {"DUE_NOTICE": _l("Avis d'échéance"), "RECEIPT": _l("Quittance"),
                "CHARGE_STATEMENT": _l("Régularisation des charges"), "SEPA_MANDATE": _l("Mandat SEPA"),
                "RENT_CERTIFICATE": _l("Attestation de loyer à jour"), "OTHER": _l("Autre document")}


class ReviewStatus(LabelledEnum):
    """Shared by insurance certificates: what staff decided about a submitted document."""

    PENDING = "pending"
    VALIDATED = "validated"
    REFUSED = "refused"
    INFO_REQUESTED = "info_requested"

    @classmethod
    def _labels(cls):
        return {"PENDING": _l("En attente de validation"), "VALIDATED": _l("Validée"), "REFUSED": _l("Refusée"),
                "INFO_REQUESTED": _l("Complément demandé")}


class MandateStatus(LabelledEnum):
    PENDING_SIGNATURE = "pending_signature"
    ACTIVE = "active"
    REFUSED = "refused"
    REPLACED = "replaced"
    REVOKED = "revoked"
    LAPSED = "lapsed"

    @classmethod
    def _labels(cls):
        return {"PENDING_SIGNATURE": _l("En attente du mandat signé"), "ACTIVE": _l("Actif"),
                "REFUSED": _l("Refusé"), "REPLACED": _l("Remplacé"), "REVOKED": _l("Révoqué"),
                "LAPSED": _l("Caduc")}


class CollectionStatus(LabelledEnum):
    """Where one direct debit stands: notified to the tenant, sent to the bank in a file, settled (credited on
    its collection date), rejected or returned by the bank, or cancelled before the file (nothing left owed)."""

    NOTIFIED = "notified"
    SUBMITTED = "submitted"
    SETTLED = "settled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @classmethod
    def _labels(cls):
        return {"NOTIFIED": _l("Annoncé"), "SUBMITTED": _l("Envoyé à la banque"), "SETTLED": _l("Encaissé"),
                "REJECTED": _l("Rejeté"), "CANCELLED": _l("Annulé")}


class PaymentStatus(LabelledEnum):
    CREATED = "created"
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    REVIEW = "review"

    @classmethod
    def _labels(cls):
        return {"CREATED": _l("Créé"), "PENDING": _l("En cours de confirmation"), "PAID": _l("Payé"),
                "FAILED": _l("Échoué"), "REVIEW": _l("À vérifier")}


class RequestKind(LabelledEnum):
    ADMINISTRATIVE = "administrative"
    TECHNICAL = "technical"

    @classmethod
    def _labels(cls):
        return {"ADMINISTRATIVE": _l("Administrative"), "TECHNICAL": _l("Technique")}


class RequestCategory(LabelledEnum):
    OCCUPANT_ARRIVAL = "occupant_arrival"
    OCCUPANT_DEPARTURE = "occupant_departure"
    SITUATION_CHANGE = "situation_change"
    BILLING_ADDRESS = "billing_address"
    ADMIN_OTHER = "admin_other"
    LIFT = "lift"
    PLUMBING = "plumbing"
    HEATING = "heating"
    ELECTRICITY = "electricity"
    DOORS_LOCKS = "doors_locks"
    COMMON_AREAS = "common_areas"
    PESTS = "pests"
    TECHNICAL_OTHER = "technical_other"

    @property
    def kind(self) -> RequestKind:
        administrative = {"OCCUPANT_ARRIVAL", "OCCUPANT_DEPARTURE", "SITUATION_CHANGE", "BILLING_ADDRESS",
                          "ADMIN_OTHER"}
        return RequestKind.ADMINISTRATIVE if self.name in administrative else RequestKind.TECHNICAL

    @classmethod
    def _labels(cls):
        return {"OCCUPANT_ARRIVAL": _l("Arrivée d'un occupant"), "OCCUPANT_DEPARTURE": _l("Départ d'un occupant"),
                "SITUATION_CHANGE": _l("Changement de situation"), "BILLING_ADDRESS": _l("Adresse de facturation"),
                "ADMIN_OTHER": _l("Autre demande administrative"), "LIFT": _l("Ascenseur"),
                "PLUMBING": _l("Plomberie"), "HEATING": _l("Chauffage"), "ELECTRICITY": _l("Électricité"),
                "DOORS_LOCKS": _l("Portes et serrures"), "COMMON_AREAS": _l("Parties communes"),
                "PESTS": _l("Nuisibles"), "TECHNICAL_OTHER": _l("Autre problème technique")}


class RequestStatus(LabelledEnum):
    SUBMITTED = "submitted"
    IN_PROGRESS = "in_progress"
    WAITING_TENANT = "waiting_tenant"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @classmethod
    def _labels(cls):
        return {"SUBMITTED": _l("Envoyée"), "IN_PROGRESS": _l("En cours"),
                "WAITING_TENANT": _l("En attente de votre réponse"), "RESOLVED": _l("Résolue"),
                "CLOSED": _l("Clôturée")}


class EventKind(LabelledEnum):
    COMMENT = "comment"
    STATUS_CHANGE = "status_change"
    INTERNAL_NOTE = "internal_note"

    @classmethod
    def _labels(cls):
        return {"COMMENT": _l("Message"), "STATUS_CHANGE": _l("Changement de statut"),
                "INTERNAL_NOTE": _l("Note interne")}


class AuthorSide(LabelledEnum):
    TENANT = "tenant"
    STAFF = "staff"
    SYSTEM = "system"

    @classmethod
    def _labels(cls):
        return {"TENANT": _l("Locataire"), "STAFF": _l("Agence"), "SYSTEM": _l("Système")}


class JobStatus(LabelledEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def _labels(cls):
        return {"RUNNING": _l("En cours"), "SUCCEEDED": _l("Terminé"), "FAILED": _l("En échec")}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class AddressMixin:
    """A French postal address: street line, optional complement, postcode and town."""

    street: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    complement: Mapped[Optional[str]] = mapped_column(sa.String(200))
    postcode: Mapped[str] = mapped_column(sa.String(5), nullable=False)
    city: Mapped[str] = mapped_column(sa.String(100), nullable=False)

    @property
    def address_lines(self) -> list[str]:
        return [line for line in (self.street, self.complement, f"{self.postcode} {self.city}") if line]

    @property
    def address(self) -> str:
        return ", ".join(self.address_lines)


class Agency(AddressMixin, Model):
    """A staff office that handles the households of its residences."""

    __tablename__ = "agency"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(10), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    phone: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    email: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    opening_hours: Mapped[Optional[str]] = mapped_column(sa.String(200))

    residences: Mapped[list["Residence"]] = relationship(back_populates="agency")

    def __str__(self) -> str:
        return self.name


class StaffAgency(Model):
    """A staff member attached to an agency: with the `Staff` role, they see and act on its households only
    (app.security.staff_agency_ids). Managed by administrators."""

    __tablename__ = "staff_agency"
    __table_args__ = (sa.UniqueConstraint("user_id", "agency_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id", ondelete="CASCADE"), index=True,
                                           nullable=False)

    user: Mapped[User] = relationship()
    agency: Mapped[Agency] = relationship()

    def __str__(self) -> str:
        return f"{self.user} - {self.agency}"


class Residence(AddressMixin, Model):
    """A building or group of buildings."""

    __tablename__ = "residence"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(10), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True, nullable=False)
    built_year: Mapped[Optional[int]] = mapped_column(sa.Integer)
    has_lift: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)

    agency: Mapped[Agency] = relationship(back_populates="residences")
    units: Mapped[list["Unit"]] = relationship(back_populates="residence")

    def __str__(self) -> str:
        return f"{self.name} ({self.city})"


class Unit(AddressMixin, Model):
    """A rented thing: a dwelling, a parking space, a garage or a commercial unit."""

    __tablename__ = "unit"
    __table_args__ = (sa.CheckConstraint("surface_m2 IS NULL OR surface_m2 > 0", name="ck_unit_surface"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True, nullable=False)
    residence_id: Mapped[int] = mapped_column(sa.ForeignKey("residence.id"), index=True, nullable=False)
    kind: Mapped[UnitKind] = mapped_column(enum_column(UnitKind), nullable=False)
    typology: Mapped[Optional[str]] = mapped_column(sa.String(10))  # T1..T6 for dwellings
    floor: Mapped[Optional[int]] = mapped_column(sa.Integer)
    surface_m2: Mapped[Optional[Decimal]] = mapped_column(sa.Numeric(7, 2))

    residence: Mapped[Residence] = relationship(back_populates="units")
    leases: Mapped[list["Lease"]] = relationship(back_populates="unit")

    def __str__(self) -> str:
        return f"{self.reference} - {self.kind.label} - {self.street}"


class Household(TimestampMixin, Model):
    """The lease holder: one client number, one signatory, at most one portal account."""

    __tablename__ = "household"
    __table_args__ = (
        sa.CheckConstraint("length(client_number) = 8", name="ck_household_client_number_length"),
        sa.Index("ix_household_signatory_last_name", "signatory_last_name"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    client_number: Mapped[str] = mapped_column(sa.String(8), unique=True, nullable=False)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True, nullable=False)
    signatory_civility: Mapped[Civility] = mapped_column(enum_column(Civility), nullable=False)
    signatory_last_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    signatory_first_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    email: Mapped[Optional[str]] = mapped_column(sa.String(254), index=True)
    phone: Mapped[Optional[str]] = mapped_column(sa.String(20))
    professional_situation: Mapped[Optional[ProfessionalSituation]] = mapped_column(
        enum_column(ProfessionalSituation)
    )
    billing_street: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    billing_complement: Mapped[Optional[str]] = mapped_column(sa.String(200))
    billing_postcode: Mapped[str] = mapped_column(sa.String(5), nullable=False)
    billing_city: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    paperless_consent: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    paperless_consent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Set when a direct debit comes back unpaid, cleared by staff once settled.
    payment_incident: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)

    agency: Mapped[Agency] = relationship()
    leases: Mapped[list["Lease"]] = relationship(back_populates="household", order_by="Lease.start_date")
    occupants: Mapped[list["Occupant"]] = relationship(back_populates="household")
    ledger_entries: Mapped[list["LedgerEntry"]] = relationship(back_populates="household")
    documents: Mapped[list["Document"]] = relationship(back_populates="household")
    account: Mapped[Optional["TenantAccount"]] = relationship(back_populates="household", uselist=False)

    @property
    def signatory_name(self) -> str:
        return f"{self.signatory_civility.label} {self.signatory_first_name} {self.signatory_last_name}"

    @property
    def balance(self) -> Decimal:
        """What the household owes (negative: what it is owed), from the ledger service."""
        from app.services.ledger import household_balance

        return household_balance(self.id)

    @property
    def account_status(self) -> str:
        from app.formatting import day

        if self.account is None:
            return str(_l("Pas de compte"))
        if self.account.activated_at is None:
            return str(_l("En attente d'activation"))
        return str(_l("Actif depuis le %(date)s", date=day(self.account.activated_at)))

    @property
    def billing_address_lines(self) -> list[str]:
        return [line for line in (self.billing_street, self.billing_complement,
                                  f"{self.billing_postcode} {self.billing_city}") if line]

    def __str__(self) -> str:
        return f"{self.client_number} - {self.signatory_last_name} {self.signatory_first_name}"


class Lease(TimestampMixin, Model):
    """One contract for one unit. The number is shown as `L/123456`."""

    __tablename__ = "lease"
    __table_args__ = (
        sa.CheckConstraint("rent >= 0 AND charges >= 0 AND deposit >= 0", name="ck_lease_amounts"),
        sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="ck_lease_dates"),
        # Money columns hold finite amounts of Numeric(12, 2) on every backend (SQLite would keep inf or 1e13).
        sa.CheckConstraint("rent BETWEEN -9999999999.99 AND 9999999999.99", name="ck_lease_rent_range"),
        sa.CheckConstraint("charges BETWEEN -9999999999.99 AND 9999999999.99", name="ck_lease_charges_range"),
        sa.CheckConstraint("housing_benefit BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_lease_housing_benefit_range"),
        sa.CheckConstraint("deposit BETWEEN -9999999999.99 AND 9999999999.99", name="ck_lease_deposit_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(6), unique=True, nullable=False)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True, nullable=False)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    start_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    end_date: Mapped[Optional[date]] = mapped_column(sa.Date)
    rent: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    charges: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=ZERO)
    # Monthly housing benefit (APL) the CAF pays straight to the landlord, deducted from what the tenant owes.
    housing_benefit: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=ZERO)
    deposit: Mapped[Decimal] = mapped_column(MONEY, nullable=False, default=ZERO)

    unit: Mapped[Unit] = relationship(back_populates="leases")
    household: Mapped[Household] = relationship(back_populates="leases")
    occupants: Mapped[list["Occupant"]] = relationship(back_populates="lease")
    ledger_entries: Mapped[list["LedgerEntry"]] = relationship(back_populates="lease")

    @property
    def display_number(self) -> str:
        return f"L/{self.number}"

    @property
    def is_active(self) -> bool:
        return self.end_date is None or self.end_date >= date.today()

    def __str__(self) -> str:
        return self.display_number


class Occupant(Model):
    """A person living in a dwelling."""

    __tablename__ = "occupant"
    __table_args__ = (
        sa.CheckConstraint("departure_date IS NULL OR arrival_date IS NULL OR departure_date >= arrival_date",
                           name="ck_occupant_dates"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("lease.id"), index=True)
    last_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    first_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    birth_date: Mapped[Optional[date]] = mapped_column(sa.Date)
    relation: Mapped[OccupantRelation] = mapped_column(enum_column(OccupantRelation), nullable=False)
    arrival_date: Mapped[Optional[date]] = mapped_column(sa.Date)
    departure_date: Mapped[Optional[date]] = mapped_column(sa.Date)

    household: Mapped[Household] = relationship(back_populates="occupants")
    lease: Mapped[Optional[Lease]] = relationship(back_populates="occupants")

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class LedgerEntry(TimestampMixin, Model):
    """One line of a lease's rent account. `amount` is never negative; `direction` says which side it is on.

    A due notice (rent call) keeps its rent and charges apart, because the receipt must show them separately.
    `external_ref` makes imports and notifications idempotent (bank transaction uuid, debit batch line, ...).
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        sa.CheckConstraint("amount >= 0", name="ck_ledger_amount"),
        sa.CheckConstraint("rent_part IS NULL OR rent_part >= 0", name="ck_ledger_rent_part"),
        sa.CheckConstraint("charges_part IS NULL OR charges_part >= 0", name="ck_ledger_charges_part"),
        sa.CheckConstraint("amount BETWEEN -9999999999.99 AND 9999999999.99", name="ck_ledger_entry_amount_range"),
        sa.CheckConstraint("rent_part BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_ledger_entry_rent_part_range"),
        sa.CheckConstraint("charges_part BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_ledger_entry_charges_part_range"),
        sa.Index("ix_ledger_household_date", "household_id", "entry_date"),
        sa.Index("ix_ledger_lease_date", "lease_id", "entry_date"),
        # One rent call and one housing-benefit credit per lease and month, whatever re-runs.
        sa.Index("uq_ledger_lease_period_kind", "lease_id", "period", "kind", unique=True,
                 sqlite_where=sa.text("kind IN ('DUE_NOTICE', 'HOUSING_BENEFIT')"),
                 postgresql_where=sa.text("kind IN ('DUE_NOTICE', 'HOUSING_BENEFIT')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), nullable=False)
    kind: Mapped[EntryKind] = mapped_column(enum_column(EntryKind), nullable=False)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    rent_part: Mapped[Optional[Decimal]] = mapped_column(MONEY)
    charges_part: Mapped[Optional[Decimal]] = mapped_column(MONEY)
    label: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    entry_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    due_date: Mapped[Optional[date]] = mapped_column(sa.Date)
    period: Mapped[Optional[str]] = mapped_column(sa.String(7))  # "YYYY-MM"
    external_ref: Mapped[Optional[str]] = mapped_column(sa.String(80), unique=True)
    # A reject, a return or a card reversal cancels one credit: the pair then pays nothing (see ledger.py).
    reverses_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ledger_entry.id"), unique=True)

    household: Mapped[Household] = relationship(back_populates="ledger_entries")
    lease: Mapped[Lease] = relationship(back_populates="ledger_entries")

    @property
    def signed_amount(self) -> Decimal:
        """Positive when it adds to what the tenant owes."""
        return self.amount if self.direction is Direction.DEBIT else -self.amount


class StoredFileMixin:
    """A file kept under FILES_DIR with a random name; the original name is only shown, never used as a path."""

    stored_name: Mapped[Optional[str]] = mapped_column(sa.String(80), unique=True)
    original_filename: Mapped[Optional[str]] = mapped_column(sa.String(200))
    content_type: Mapped[Optional[str]] = mapped_column(sa.String(80))
    size_bytes: Mapped[Optional[int]] = mapped_column(sa.Integer)
    sha256: Mapped[Optional[str]] = mapped_column(sa.String(64))


class Document(StoredFileMixin, TimestampMixin, Model):
    """A document of a household. Generated documents are rendered once, stored, then served."""

    __tablename__ = "document"
    __table_args__ = (
        sa.Index("ix_document_household_kind_period", "household_id", "kind", "period"),
        sa.Index("uq_document_generated", "lease_id", "kind", "period", unique=True,
                 sqlite_where=sa.text("kind IN ('DUE_NOTICE', 'RECEIPT', 'CHARGE_STATEMENT')"),
                 postgresql_where=sa.text("kind IN ('DUE_NOTICE', 'RECEIPT', 'CHARGE_STATEMENT')")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), nullable=False)
    lease_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("lease.id"), index=True)
    kind: Mapped[DocumentKind] = mapped_column(enum_column(DocumentKind), nullable=False)
    period: Mapped[Optional[str]] = mapped_column(sa.String(7))  # "YYYY-MM", or "YYYY" for yearly statements
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    mandate_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("direct_debit_mandate.id"))

    household: Mapped[Household] = relationship(back_populates="documents")
    lease: Mapped[Optional[Lease]] = relationship()
    created_by: Mapped[Optional[User]] = relationship()

    def __str__(self) -> str:
        return self.title


class InsuranceCertificate(StoredFileMixin, TimestampMixin, Model):
    """A yearly home-insurance certificate, validated by staff."""

    __tablename__ = "insurance_certificate"
    __table_args__ = (
        sa.CheckConstraint("end_date > start_date", name="ck_insurance_dates"),
        sa.Index("ix_insurance_status_created", "status", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), index=True, nullable=False)
    insurer: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    policy_number: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    start_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    end_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    status: Mapped[ReviewStatus] = mapped_column(enum_column(ReviewStatus), nullable=False,
                                                 default=ReviewStatus.PENDING)
    decision_reason: Mapped[Optional[str]] = mapped_column(sa.Text)
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    # Reminders already sent, so the daily job sends each once.
    reminder_sent_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    expiry_notice_sent_on: Mapped[Optional[date]] = mapped_column(sa.Date)

    household: Mapped[Household] = relationship()
    lease: Mapped[Lease] = relationship()
    decided_by: Mapped[Optional[User]] = relationship()

    def __str__(self) -> str:
        return f"{self.insurer} {self.policy_number}"


mandate_lease = sa.Table(
    "direct_debit_mandate_lease", Model.metadata,
    sa.Column("mandate_id", sa.ForeignKey("direct_debit_mandate.id"), primary_key=True),
    sa.Column("lease_id", sa.ForeignKey("lease.id"), primary_key=True, index=True),
)


class DirectDebitMandate(StoredFileMixin, TimestampMixin, Model):
    """A SEPA Core mandate (RUM = `reference`). It covers `leases` (by default every lease of the household);
    `lease_id` is the lease its RUM was made from. The stored file is the tenant's RIB."""

    __tablename__ = "direct_debit_mandate"
    __table_args__ = (
        sa.CheckConstraint("debit_day IN (2, 7, 10)", name="ck_mandate_debit_day"),
        sa.Index("ix_mandate_status_day", "status", "debit_day"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(35), unique=True, nullable=False)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), index=True, nullable=False)
    iban: Mapped[str] = mapped_column(EncryptedString(160), nullable=False)  # a Fernet token at rest
    bic: Mapped[Optional[str]] = mapped_column(sa.String(11))
    bank_name: Mapped[Optional[str]] = mapped_column(sa.String(120))
    account_holder: Mapped[str] = mapped_column(sa.String(140), nullable=False)
    debit_day: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    status: Mapped[MandateStatus] = mapped_column(enum_column(MandateStatus), nullable=False,
                                                  default=MandateStatus.PENDING_SIGNATURE)
    signed_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    activated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_collection_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    decision_reason: Mapped[Optional[str]] = mapped_column(sa.Text)
    holder_street: Mapped[Optional[str]] = mapped_column(sa.String(140))
    holder_postcode: Mapped[Optional[str]] = mapped_column(sa.String(16))
    holder_city: Mapped[Optional[str]] = mapped_column(sa.String(100))
    holder_country: Mapped[str] = mapped_column(sa.String(2), nullable=False, default="FR", server_default="FR")
    consent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # A new mandate (new bank details) replaces this one once it is activated.
    replaces_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("direct_debit_mandate.id"))

    household: Mapped[Household] = relationship()
    lease: Mapped[Lease] = relationship()
    leases: Mapped[list[Lease]] = relationship(secondary=mandate_lease, order_by="Lease.start_date")

    @property
    def masked_iban(self) -> str:
        compact = self.iban.replace(" ", "")
        return f"{compact[:4]} **** **** {compact[-3:]}" if len(compact) > 7 else "****"

    def __str__(self) -> str:
        return self.reference


class DirectDebitBatch(TimestampMixin, Model):
    """One pain.008 collection file for a debit day, stored for staff to download and send to the bank."""

    __tablename__ = "direct_debit_batch"
    # One file per debit day and month, unless the bank refused the whole file: then it may be built again.
    __table_args__ = (sa.Index("uq_direct_debit_batch_period_day", "period", "debit_day", unique=True,
                               sqlite_where=sa.text("rejected_reason IS NULL"),
                               postgresql_where=sa.text("rejected_reason IS NULL")),
                      sa.CheckConstraint("total BETWEEN -9999999999.99 AND 9999999999.99",
                                         name="ck_direct_debit_batch_total_range"))
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    period: Mapped[str] = mapped_column(sa.String(7), nullable=False)
    debit_day: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    schema: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    # The <MsgId> written in the file: what the bank quotes back in its pain.002 and camt messages.
    message_id: Mapped[str] = mapped_column(sa.String(35), unique=True, nullable=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    rejected_reason: Mapped[Optional[str]] = mapped_column(sa.String(4))  # the bank refused the whole file
    count: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    total: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    stored_name: Mapped[str] = mapped_column(sa.String(80), unique=True, nullable=False)

    collections: Mapped[list["DirectDebitCollection"]] = relationship(back_populates="batch")

    def __str__(self) -> str:
        return f"{self.collection_date} ({self.count})"


class DirectDebitCollection(Model):
    """One debit of one mandate for one month: unique per (mandate, period), so a re-run never debits twice.

    It is created when the tenant is pre-notified (amount and date), put in a file (`batch`), and credited on the
    ledger on its collection date, never before; its `shares` say what each covered lease gets.
    """

    __tablename__ = "direct_debit_collection"
    __table_args__ = (
        sa.UniqueConstraint("mandate_id", "period", name="uq_direct_debit_collection_mandate_period"),
        sa.CheckConstraint("amount > 0", name="ck_direct_debit_collection_amount"),
        sa.CheckConstraint("amount BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_direct_debit_collection_amount_range"),
        sa.CheckConstraint("notified_amount BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_direct_debit_collection_notified_amount_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("direct_debit_batch.id"), index=True)
    mandate_id: Mapped[int] = mapped_column(sa.ForeignKey("direct_debit_mandate.id"), nullable=False)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), nullable=False)
    period: Mapped[str] = mapped_column(sa.String(7), nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    sequence_type: Mapped[str] = mapped_column(sa.String(4), nullable=False)
    end_to_end_id: Mapped[str] = mapped_column(sa.String(35), unique=True, nullable=False)
    rejected_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    reject_reason: Mapped[Optional[str]] = mapped_column(sa.String(120))
    collection_date: Mapped[date] = mapped_column(sa.Date, nullable=False)
    status: Mapped[CollectionStatus] = mapped_column(enum_column(CollectionStatus), nullable=False,
                                                     default=CollectionStatus.NOTIFIED)
    notified_amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    notified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    settled_on: Mapped[Optional[date]] = mapped_column(sa.Date)

    batch: Mapped[Optional[DirectDebitBatch]] = relationship(back_populates="collections")
    mandate: Mapped["DirectDebitMandate"] = relationship()
    household: Mapped[Household] = relationship()
    lease: Mapped[Lease] = relationship()
    shares: Mapped[list["DirectDebitShare"]] = relationship(back_populates="collection",
                                                            order_by="DirectDebitShare.lease_id")

    def __str__(self) -> str:
        return self.end_to_end_id


class DirectDebitShare(Model):
    """The part of one direct debit that pays one covered lease, and the ledger credit it became once settled."""

    __tablename__ = "direct_debit_share"
    __table_args__ = (
        sa.UniqueConstraint("collection_id", "lease_id", name="uq_direct_debit_share_collection_lease"),
        sa.CheckConstraint("amount >= 0", name="ck_direct_debit_share_amount"),
        sa.CheckConstraint("amount BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_direct_debit_share_amount_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(sa.ForeignKey("direct_debit_collection.id"), nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), index=True, nullable=False)
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    credit_entry_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ledger_entry.id"), unique=True)

    collection: Mapped[DirectDebitCollection] = relationship(back_populates="shares")
    lease: Mapped[Lease] = relationship()


class BankFileImport(TimestampMixin, Model):
    """An answer of the bank (pain.002 status report, camt.054 notification, camt.053 statement) imported by
    staff. Unique per message: the same file imported twice, even at the same time, is applied once."""

    __tablename__ = "bank_file_import"
    __table_args__ = (sa.UniqueConstraint("message_type", "message_id", name="uq_bank_file_import_message"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    message_type: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    message_id: Mapped[str] = mapped_column(sa.String(35), nullable=False)
    filename: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    sha256: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    imported_by_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    applied: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    to_review: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    # One line per transaction of the file: what was done with it, or why it waits for a person.
    report: Mapped[list] = mapped_column(sa.JSON, nullable=False, default=list)

    imported_by: Mapped[Optional[User]] = relationship()

    def __str__(self) -> str:
        return f"{self.message_type} {self.message_id}"


class PaymentTransaction(TimestampMixin, Model):
    """A card payment through the bank's hosted page. Only the bank's signed notification makes it paid."""

    __tablename__ = "payment_transaction"
    __table_args__ = (
        sa.UniqueConstraint("trans_day", "trans_id", name="uq_payment_trans_day_id"),
        sa.CheckConstraint("amount > 0", name="ck_payment_amount"),
        sa.CheckConstraint("amount BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_payment_transaction_amount_range"),
        sa.Index("ix_payment_status_created", "status", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("lease.id"))  # None: all the household's leases
    order_id: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    trans_id: Mapped[str] = mapped_column(sa.String(6), nullable=False)
    trans_day: Mapped[date] = mapped_column(sa.Date, nullable=False)  # UTC day: trans_id is unique per day
    amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    currency: Mapped[str] = mapped_column(sa.String(3), nullable=False, default="978")
    ctx_mode: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    status: Mapped[PaymentStatus] = mapped_column(enum_column(PaymentStatus), nullable=False,
                                                  default=PaymentStatus.CREATED)
    bank_status: Mapped[Optional[str]] = mapped_column(sa.String(40))
    bank_result: Mapped[Optional[str]] = mapped_column(sa.String(4))
    trans_uuid: Mapped[Optional[str]] = mapped_column(sa.String(32), unique=True)
    notified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    review_reason: Mapped[Optional[str]] = mapped_column(sa.Text)
    operation_type: Mapped[Optional[str]] = mapped_column(sa.String(10))  # vads_operation_type: DEBIT or CREDIT
    check_src: Mapped[Optional[str]] = mapped_column(sa.String(20))  # vads_url_check_src: PAY, BO, BATCH, ...
    reversed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The payment receipt (« reçu de paiement »), rendered by a job after the bank's notification.
    receipt_stored_name: Mapped[Optional[str]] = mapped_column(sa.String(80), unique=True)

    household: Mapped[Household] = relationship()
    lease: Mapped[Optional[Lease]] = relationship()

    def __str__(self) -> str:
        return self.order_id


class TenantRequest(TimestampMixin, Model):
    """An administrative or technical request (« demande ») and its handling."""

    __tablename__ = "tenant_request"
    __table_args__ = (
        sa.CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="ck_request_rating"),
        sa.Index("ix_request_household_created", "household_id", "created_at"),
        sa.Index("ix_request_queue", "agency_id", "status", "category"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(20), unique=True, nullable=False)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), nullable=False)
    lease_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("lease.id"))
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), nullable=False)
    kind: Mapped[RequestKind] = mapped_column(enum_column(RequestKind), nullable=False)
    category: Mapped[RequestCategory] = mapped_column(enum_column(RequestCategory), nullable=False)
    common_areas: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str] = mapped_column(sa.Text, nullable=False)
    access_info: Mapped[Optional[str]] = mapped_column(sa.Text)
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus), nullable=False,
                                                  default=RequestStatus.SUBMITTED)
    assigned_to_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    # Structured data of an administrative request (an occupant arriving or leaving), applied when staff accept.
    payload: Mapped[Optional[dict]] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    rating: Mapped[Optional[int]] = mapped_column(sa.SmallInteger)

    household: Mapped[Household] = relationship()
    lease: Mapped[Optional[Lease]] = relationship()
    agency: Mapped[Agency] = relationship()
    assigned_to: Mapped[Optional[User]] = relationship()
    events: Mapped[list["RequestEvent"]] = relationship(back_populates="request", order_by="RequestEvent.created_at")

    def __str__(self) -> str:
        return f"{self.number} - {self.subject}"


class RequestEvent(TimestampMixin, Model):
    """One step of a request's timeline: a message, a status change or an internal note (never shown to
    tenants)."""

    __tablename__ = "request_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("tenant_request.id"), index=True, nullable=False)
    kind: Mapped[EventKind] = mapped_column(enum_column(EventKind), nullable=False)
    author_side: Mapped[AuthorSide] = mapped_column(enum_column(AuthorSide), nullable=False)
    author_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    body: Mapped[Optional[str]] = mapped_column(sa.Text)
    old_status: Mapped[Optional[RequestStatus]] = mapped_column(enum_column(RequestStatus))
    new_status: Mapped[Optional[RequestStatus]] = mapped_column(enum_column(RequestStatus))

    request: Mapped[TenantRequest] = relationship(back_populates="events")
    author: Mapped[Optional[User]] = relationship()
    attachments: Mapped[list["Attachment"]] = relationship(back_populates="event")

    @property
    def is_internal(self) -> bool:
        return self.kind is EventKind.INTERNAL_NOTE


class Attachment(StoredFileMixin, TimestampMixin, Model):
    """A file attached to a request event (photo or PDF)."""

    __tablename__ = "attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("request_event.id"), index=True, nullable=False)

    event: Mapped[RequestEvent] = relationship(back_populates="attachments")

    def __str__(self) -> str:
        return self.original_filename or self.stored_name or ""


class TenantAccount(TimestampMixin, Model):
    """The link between a portal user and its household: one account per household, one household per user.

    `activated_at` stays empty until the tenant follows the activation link; `locale` is the language of the
    messages sent to the tenant.
    """

    __tablename__ = "tenant_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id"), unique=True, nullable=False)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), unique=True, nullable=False)
    activated_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    locale: Mapped[str] = mapped_column(sa.String(5), nullable=False, default="fr", server_default="fr")

    user: Mapped[User] = relationship()
    household: Mapped[Household] = relationship(back_populates="account")

    def __str__(self) -> str:
        return self.user.email if self.user else str(self.household_id)


class ChargeStatement(TimestampMixin, Model):
    """The yearly charge regularisation of a dwelling lease (« décompte par nature de charges »)."""

    __tablename__ = "charge_statement"
    __table_args__ = (sa.UniqueConstraint("lease_id", "year", name="uq_charge_statement_lease_year"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    lease_id: Mapped[int] = mapped_column(sa.ForeignKey("lease.id"), nullable=False)
    year: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    days_occupied: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False, default=365)

    lease: Mapped[Lease] = relationship()
    lines: Mapped[list["ChargeStatementLine"]] = relationship(back_populates="statement",
                                                              order_by="ChargeStatementLine.id")

    @property
    def total_share(self) -> Decimal:
        return sum((line.tenant_share for line in self.lines), ZERO)

    @property
    def total_provisions(self) -> Decimal:
        return sum((line.provisions_paid for line in self.lines), ZERO)

    @property
    def balance(self) -> Decimal:
        """Positive: the tenant owes it; negative: refunded to the tenant."""
        return self.total_share - self.total_provisions


class ChargeStatementLine(Model):
    """One nature of recoverable charge (décret 82-955): the building's expense, the split key, the tenant's share
    and the provisions the tenant already paid for it."""

    __tablename__ = "charge_statement_line"
    __table_args__ = (
        sa.CheckConstraint("building_expense >= 0 AND tenant_share >= 0 AND provisions_paid >= 0",
                           name="ck_charge_line_amounts"),
        sa.CheckConstraint("building_expense BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_charge_statement_line_building_expense_range"),
        sa.CheckConstraint("tenant_share BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_charge_statement_line_tenant_share_range"),
        sa.CheckConstraint("provisions_paid BETWEEN -9999999999.99 AND 9999999999.99",
                           name="ck_charge_statement_line_provisions_paid_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(sa.ForeignKey("charge_statement.id"), index=True, nullable=False)
    nature: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    split_key: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    building_expense: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    tenant_share: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    provisions_paid: Mapped[Decimal] = mapped_column(MONEY, nullable=False)

    statement: Mapped[ChargeStatement] = relationship(back_populates="lines")

    @property
    def balance(self) -> Decimal:
        return self.tenant_share - self.provisions_paid


class RentCertificate(TimestampMixin, Model):
    """An « attestation de loyer à jour » issued to a household; anyone holding its code can check it."""

    __tablename__ = "rent_certificate"
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), index=True, nullable=False)
    code: Mapped[str] = mapped_column(sa.String(20), unique=True, nullable=False)
    holder_name: Mapped[str] = mapped_column(sa.String(220), nullable=False)
    issued_on: Mapped[date] = mapped_column(sa.Date, nullable=False)

    household: Mapped[Household] = relationship()


class UserSessionState(Model):
    """Per-user session version, copied into the session at login and checked on every request: bumping it
    (password change or reset, closing, deactivation) ends every open session of that user."""

    __tablename__ = "user_session_state"
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    password_changed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class TokenPurpose(LabelledEnum):
    ACTIVATION = "activation"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE = "email_change"

    @classmethod
    def _labels(cls):
        return {"ACTIVATION": _l("Activation du compte"), "PASSWORD_RESET": _l("Nouveau mot de passe"),
                "EMAIL_CHANGE": _l("Changement d'adresse e-mail")}


class AccountToken(TimestampMixin, Model):
    """A single-use link sent by email. Only the SHA-256 of the random token is stored, so a database leak does
    not leak usable links, and a link cannot be forged or altered."""

    __tablename__ = "account_token"
    __table_args__ = (sa.Index("ix_account_token_expires", "expires_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id", ondelete="CASCADE"), index=True, nullable=False)
    purpose: Mapped[TokenPurpose] = mapped_column(enum_column(TokenPurpose), nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    new_email: Mapped[Optional[str]] = mapped_column(sa.String(254))

    user: Mapped[User] = relationship()


class HouseholdSearchTerm(Model):
    """What staff may type to find a household (app.services.household_search): client number, lease numbers,
    names of the signatory and occupants, e-mail addresses, phone digits, streets, each normalised (no accents,
    lower case). Found by prefix with a range on the (term) index: an index range scan, not a table scan.
    Kept up to date by the session hook of that module; `flask reindex-households` rebuilds it."""

    __tablename__ = "household_search_term"
    __table_args__ = (
        sa.Index("ix_household_search_term_term", "term", "household_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id", ondelete="CASCADE"), index=True,
                                              nullable=False)
    # byte order on PostgreSQL too, so `term >= q AND term < q || '\x7f'` is exactly "starts with q"
    term: Mapped[str] = mapped_column(sa.String(120).with_variant(sa.String(120, collation="C"), "postgresql"),
                                      nullable=False)


class Throttle(Model):
    """Failed attempts per key (an account's email, a client number), shared by every web process."""

    __tablename__ = "throttle"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(300), unique=True, nullable=False)
    failures: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class OutgoingMail(TimestampMixin, Model):
    """A message queued in the same transaction as the use case that sends it, delivered right after the
    response (and retried by a job), so a request never waits on SMTP and never sends for a rolled-back change."""

    __tablename__ = "outgoing_mail"
    __table_args__ = (sa.Index("ix_outgoing_mail_pending", "sent_at", "attempts"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(sa.String(254), nullable=False)
    subject: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    text_body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    html_body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(sa.Text)


class JobRun(Model):
    """One run of a scheduled job, for staff to check batches."""

    __tablename__ = "job_run"
    __table_args__ = (sa.Index("ix_job_run_name_started", "job_name", "started_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    status: Mapped[JobStatus] = mapped_column(enum_column(JobStatus), nullable=False, default=JobStatus.RUNNING)
    items: Mapped[int] = mapped_column(sa.Integer, default=0, nullable=False)
    errors: Mapped[int] = mapped_column(sa.Integer, default=0, nullable=False)
    message: Mapped[Optional[str]] = mapped_column(sa.Text)


class NoteKind(LabelledEnum):
    NOTE = "note"
    PAYMENT_PROMISE = "payment_promise"

    @classmethod
    def _labels(cls):
        return {"NOTE": _l("Note"), "PAYMENT_PROMISE": _l("Promesse de paiement")}


class HouseholdNote(Model):
    """What a staff member wrote down about a household: a note (a call, a visit), or a payment promise (an amount
    the tenant says they will pay by a date; app.services.household_file says whether it was kept). Never changed
    or deleted (app.services.audit refuses it): a later note corrects an earlier one."""

    __tablename__ = "household_note"
    __table_args__ = (
        sa.Index("ix_household_note_household_created", "household_id", "created_at"),
        sa.CheckConstraint("promised_amount BETWEEN 0.01 AND 9999999999.99",
                           name="ck_household_note_promised_amount_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), nullable=False)
    kind: Mapped[NoteKind] = mapped_column(enum_column(NoteKind), nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False)
    promised_amount: Mapped[Optional[Decimal]] = mapped_column(MONEY)
    promised_on: Mapped[Optional[date]] = mapped_column(sa.Date)
    author_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    household: Mapped[Household] = relationship()
    author: Mapped[Optional[User]] = relationship()

    def __str__(self) -> str:
        return self.body if len(self.body) <= 60 else self.body[:59] + "…"


def _name_enum_constraints() -> None:
    """Name each enum column's type and CHECK constraint after its table and column (by default both are named
    after the enum class, which clashes when one table has two columns of the same enum)."""
    for table in Model.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, sa.Enum):
                column.type.name = f"ck_{table.name}_{column.name}"
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint) and getattr(constraint, "_type_bound", False):
                (column,) = constraint.columns
                constraint.name = f"ck_{table.name}_{column.name}"


_name_enum_constraints()


class UserSession(Model):
    """One signed-in browser (tenant or staff). The session cookie carries a random id; only its SHA-256 is stored,
    so the table gives nobody a usable session. Checked on every request next to the per-user session version:
    logout revokes the row, and a row ends on the server after `SESSION_MAX_HOURS` from sign-in (absolute) or
    `PERMANENT_SESSION_LIFETIME` without a request (idle), whatever the cookie says."""

    __tablename__ = "user_session"
    __table_args__ = (sa.Index("ix_user_session_last_seen", "last_seen_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id", ondelete="CASCADE"), index=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class AuditEvent(Model):
    """One change staff made to a household's data: who, when, what, and the values before and after
    (`changes`: {"column": [before, after]}, secrets left out or masked). Written by the session hook of
    app.services.audit; never updated or deleted (no screen offers it and that module's guard refuses it)."""

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_household_created", "household_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    user_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("ab_user.id"))  # None: a job or the system
    household_id: Mapped[int] = mapped_column(sa.ForeignKey("household.id"), nullable=False)
    entity_type: Mapped[str] = mapped_column(sa.String(60), nullable=False)  # the changed row's table
    entity_id: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    action: Mapped[str] = mapped_column(sa.String(30), nullable=False)  # created, changed, deleted, or a named one
    changes: Mapped[dict] = mapped_column(sa.JSON, nullable=False, default=dict)
    summary: Mapped[str] = mapped_column(sa.String(300), nullable=False)  # a short sentence in French

    user: Mapped[Optional[User]] = relationship()
    household: Mapped[Household] = relationship()

    @property
    def changed_columns(self) -> list[tuple[str, Optional[sa.Column], object, object]]:
        """(name, column of the changed table or None, before, after) for each change, by name."""
        table = Model.metadata.tables.get(self.entity_type)
        return [(name, table.c.get(name) if table is not None else None, before, after)
                for name, (before, after) in sorted((self.changes or {}).items())]


class SecondFactor(Model):
    """A staff or admin account's TOTP second factor (app.services.second_factor). The secret is encrypted at rest;
    `last_step` is the last 30-second step accepted, so a code is used once."""

    __tablename__ = "second_factor"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("ab_user.id", ondelete="CASCADE"), unique=True,
                                         nullable=False)
    secret: Mapped[str] = mapped_column(EncryptedString(200), nullable=False)
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_step: Mapped[Optional[int]] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

