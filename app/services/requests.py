"""Tenant requests (« demandes »): creating them and reading a household's list.

Occupant declarations are administrative requests carrying a structured payload, applied to the occupants list
when staff accept them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from app.extensions import db
from app.mail import external_url, queue_mail
from app.models import (
    Attachment, AuthorSide, EventKind, Household, Lease, Occupant, OccupantRelation, RequestCategory, RequestEvent,
    RequestKind, RequestStatus, TenantRequest, UnitKind,
)
from app.services import uploads

OPEN_STATUSES = (RequestStatus.SUBMITTED, RequestStatus.IN_PROGRESS, RequestStatus.WAITING_TENANT)


class RequestError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


def _number(now: datetime) -> str:
    """D<yymm>-<6 random digits>: short to read over the phone, unique (checked)."""
    while True:
        number = f"D{now:%y%m}-{secrets.randbelow(10 ** 6):06d}"
        if db.session.scalar(sa.select(TenantRequest.id).where(TenantRequest.number == number)) is None:
            return number


def create_request(household: Household, category: RequestCategory, subject: str, description: str, now: datetime,
                   lease: Lease | None = None, payload: dict | None = None, access_info: str | None = None,
                   author_id: int | None = None, side: AuthorSide = AuthorSide.TENANT) -> TenantRequest:
    request = TenantRequest(
        number=_number(now), household_id=household.id, lease_id=lease.id if lease else None,
        agency_id=household.agency_id, kind=category.kind, category=category,
        common_areas=category is RequestCategory.COMMON_AREAS, subject=subject, description=description,
        access_info=access_info, status=RequestStatus.SUBMITTED, payload=payload, created_at=now, updated_at=now)
    db.session.add(request)
    db.session.flush()
    db.session.add(RequestEvent(request_id=request.id, kind=EventKind.COMMENT, author_side=side,
                                author_id=author_id, body=description, created_at=now))
    return request


def dwelling_lease(household: Household) -> Lease | None:
    return next((lease for lease in household.leases if lease.unit.kind is UnitKind.DWELLING and lease.is_active),
                None)


def declare_arrival(household: Household, last_name: str, first_name: str, birth_date: date | None,
                    relation: OccupantRelation, arrival_date: date, now: datetime, author_id: int | None = None
                    ) -> TenantRequest:
    if arrival_date > now.date().replace(year=now.year + 1):
        raise RequestError(_("La date d'arrivée doit être dans les douze prochains mois."), "arrival_date")
    if birth_date and birth_date > now.date():
        raise RequestError(_("La date de naissance ne peut pas être dans le futur."), "birth_date")
    name = f"{first_name.strip()} {last_name.strip()}"
    description = _("Arrivée de %(name)s (%(relation)s) le %(date)s.", name=name, relation=relation.label,
                    date=arrival_date.strftime("%d/%m/%Y"))
    payload = {"action": "arrival", "last_name": last_name.strip(), "first_name": first_name.strip(),
               "birth_date": birth_date.isoformat() if birth_date else None, "relation": relation.name,
               "arrival_date": arrival_date.isoformat()}
    request = create_request(household, RequestCategory.OCCUPANT_ARRIVAL,
                             _("Arrivée d'un occupant : %(name)s", name=name), description, now,
                             lease=dwelling_lease(household), payload=payload, author_id=author_id)
    db.session.commit()
    return request


def declare_departure(household: Household, occupant: Occupant, departure_date: date, now: datetime,
                      author_id: int | None = None, side: AuthorSide = AuthorSide.TENANT) -> TenantRequest:
    if occupant.household_id != household.id:
        raise RequestError(_("Cet occupant n'est pas rattaché à votre foyer."), "occupant")
    if occupant.arrival_date and departure_date < occupant.arrival_date:
        raise RequestError(_("La date de départ ne peut pas précéder la date d'arrivée."), "departure_date")
    name = f"{occupant.first_name} {occupant.last_name}"
    description = _("Départ de %(name)s le %(date)s.", name=name, date=departure_date.strftime("%d/%m/%Y"))
    request = create_request(household, RequestCategory.OCCUPANT_DEPARTURE,
                             _("Départ d'un occupant : %(name)s", name=name), description, now,
                             lease=dwelling_lease(household),
                             payload={"action": "departure", "occupant_id": occupant.id,
                                      "departure_date": departure_date.isoformat()}, author_id=author_id)
    db.session.commit()
    return request


def household_requests(household_id: int) -> list[TenantRequest]:
    """The household's requests, newest first, with their agency (one query)."""
    return list(db.session.scalars(
        sa.select(TenantRequest).where(TenantRequest.household_id == household_id)
        .options(sa.orm.joinedload(TenantRequest.agency)).order_by(TenantRequest.created_at.desc())))


def current_occupants(household: Household, today: date) -> list[Occupant]:
    return [o for o in household.occupants if o.departure_date is None or o.departure_date > today]


# --- tenant side ------------------------------------------------------------------------------------------------------

HANDLING_DAYS = {
    RequestCategory.LIFT: 2, RequestCategory.HEATING: 2, RequestCategory.PLUMBING: 3,
    RequestCategory.ELECTRICITY: 3, RequestCategory.DOORS_LOCKS: 5, RequestCategory.COMMON_AREAS: 7,
    RequestCategory.PESTS: 10, RequestCategory.TECHNICAL_OTHER: 10,
}
ADMINISTRATIVE_DAYS = 15
REOPEN_DAYS = 15
MAX_ATTACHMENTS = 5
TENANT_CATEGORIES = [c for c in RequestCategory
                     if c not in (RequestCategory.OCCUPANT_ARRIVAL, RequestCategory.OCCUPANT_DEPARTURE)]


def handling_days(category: RequestCategory) -> int:
    """The indicative handling time shown to tenants, in working days."""
    return HANDLING_DAYS.get(category, ADMINISTRATIVE_DAYS)


@dataclass
class NewRequest:
    category: RequestCategory
    subject: str
    description: str
    common_areas: bool = False
    availability: str = ""
    presence_needed: bool = False
    pets: bool = False


def _access_info(data: NewRequest) -> str | None:
    if data.category.kind is not RequestKind.TECHNICAL:
        return None
    parts = []
    if data.availability.strip():
        parts.append(_("Disponibilités : %(when)s", when=data.availability.strip()))
    parts.append(_("Présence du locataire nécessaire : %(answer)s", answer=_("oui") if data.presence_needed
                   else _("non")))
    parts.append(_("Animaux dans le logement : %(answer)s", answer=_("oui") if data.pets else _("non")))
    return "\n".join(parts)


def _attach(event: RequestEvent, files) -> None:
    for checked in files:
        attachment = Attachment(event=event)
        uploads.store(checked, attachment)
        db.session.add(attachment)


def submit(household: Household, data: NewRequest, files, now: datetime, author_id: int | None) -> TenantRequest:
    if data.category not in TENANT_CATEGORIES:
        raise RequestError(_("Choisissez le type de votre demande."), "category")
    if len(files) > MAX_ATTACHMENTS:
        raise RequestError(_("Vous pouvez joindre 5 fichiers au plus."), "attachments")
    common = data.common_areas or data.category is RequestCategory.COMMON_AREAS
    request = create_request(household, data.category, data.subject.strip(), data.description.strip(), now,
                             lease=dwelling_lease(household), access_info=_access_info(data), author_id=author_id)
    request.common_areas = common
    _attach(request.events[0] if request.events else _first_event(request), files)
    db.session.commit()
    return request


def _first_event(request: TenantRequest) -> RequestEvent:
    return db.session.scalar(sa.select(RequestEvent).where(RequestEvent.request_id == request.id)
                             .order_by(RequestEvent.id))


def _status_event(request: TenantRequest, new_status: RequestStatus, side: AuthorSide, now: datetime,
                  author_id: int | None = None, body: str | None = None) -> RequestEvent:
    event = RequestEvent(request_id=request.id, kind=EventKind.STATUS_CHANGE, author_side=side,
                         author_id=author_id, old_status=request.status, new_status=new_status, body=body,
                         created_at=now)
    request.status, request.updated_at = new_status, now
    if new_status is RequestStatus.RESOLVED:
        request.resolved_at = now
    db.session.add(event)
    return event


def add_information(request: TenantRequest, body: str, files, now: datetime, author_id: int | None) -> None:
    """« Ajouter un complément d'information »; a request waiting for the tenant goes back to the agency."""
    if request.status is RequestStatus.CLOSED:
        raise RequestError(_("Cette demande est clôturée. Créez une nouvelle demande."), "body")
    if not body.strip() and not files:
        raise RequestError(_("Écrivez un message ou joignez un fichier."), "body")
    if len(files) > MAX_ATTACHMENTS:
        raise RequestError(_("Vous pouvez joindre 5 fichiers au plus."), "attachments")
    event = RequestEvent(request_id=request.id, kind=EventKind.COMMENT, author_side=AuthorSide.TENANT,
                         author_id=author_id, body=body.strip() or None, created_at=now)
    db.session.add(event)
    _attach(event, files)
    request.updated_at = now
    if request.status is RequestStatus.WAITING_TENANT:
        _status_event(request, RequestStatus.IN_PROGRESS, AuthorSide.SYSTEM, now)
    db.session.commit()


def can_reopen(request: TenantRequest, now: datetime) -> bool:
    return (request.status is RequestStatus.RESOLVED and request.resolved_at is not None
            and now - request.resolved_at <= timedelta(days=REOPEN_DAYS))


def rate(request: TenantRequest, rating: int, now: datetime) -> None:
    if request.status not in (RequestStatus.RESOLVED, RequestStatus.CLOSED):
        raise RequestError(_("Vous pourrez noter le traitement quand la demande sera résolue."), "rating")
    if rating not in range(1, 6):
        raise RequestError(_("Choisissez une note de 1 à 5."), "rating")
    request.rating, request.updated_at = rating, now
    db.session.commit()


def reopen(request: TenantRequest, reason: str, now: datetime, author_id: int | None) -> None:
    if not can_reopen(request, now):
        raise RequestError(_("Une demande peut être réouverte pendant 15 jours après sa résolution."), "reason")
    if not reason.strip():
        raise RequestError(_("Expliquez pourquoi le problème n'est pas réglé."), "reason")
    _status_event(request, RequestStatus.IN_PROGRESS, AuthorSide.TENANT, now, author_id, reason.strip())
    request.resolved_at = None
    db.session.commit()


def timeline(request: TenantRequest, internal: bool) -> list[RequestEvent]:
    """The request's events, oldest first, with their attachments; internal notes only for staff (one query)."""
    query = (sa.select(RequestEvent).where(RequestEvent.request_id == request.id)
             .options(sa.orm.selectinload(RequestEvent.attachments)).order_by(RequestEvent.created_at,
                                                                               RequestEvent.id))
    if not internal:
        query = query.where(RequestEvent.kind != EventKind.INTERNAL_NOTE)
    return list(db.session.scalars(query))


def attachment_for_household(attachment_id: int, household: Household | None) -> Attachment:
    """An attachment of a public event of one of the household's requests; anything else is a 404."""
    from flask import abort

    if household is None:
        abort(404)
    attachment = db.session.scalar(
        sa.select(Attachment).join(RequestEvent).join(TenantRequest)
        .where(Attachment.id == attachment_id, TenantRequest.household_id == household.id,
               RequestEvent.kind != EventKind.INTERNAL_NOTE))
    if attachment is None:
        abort(404)
    return attachment


# --- staff side -------------------------------------------------------------------------------------------------------

def notify_tenant(request: TenantRequest, message: str | None) -> None:
    account = request.household.account
    if account is None or not account.user.active:
        return
    queue_mail(account.user.email, "request_update", account.locale, name=account.user.first_name,
               number=request.number, subject=request.subject, status=request.status.label,
               message=message, link=external_url("TenantRequestsView.detail", request_id=request.id))


def staff_reply(request: TenantRequest, body: str, internal: bool, files, now: datetime, staff_id: int) -> None:
    if not body.strip():
        raise RequestError(_("Écrivez le message."), "body")
    event = RequestEvent(request_id=request.id, kind=EventKind.INTERNAL_NOTE if internal else EventKind.COMMENT,
                         author_side=AuthorSide.STAFF, author_id=staff_id, body=body.strip(), created_at=now)
    db.session.add(event)
    _attach(event, files)
    request.updated_at = now
    if not internal:
        notify_tenant(request, body.strip())
    db.session.commit()


def staff_set_status(request: TenantRequest, new_status: RequestStatus, comment: str, now: datetime,
                     staff_id: int) -> None:
    if new_status is request.status:
        raise RequestError(_("La demande a déjà ce statut."), "status")
    _status_event(request, new_status, AuthorSide.STAFF, now, staff_id, comment.strip() or None)
    if new_status is RequestStatus.RESOLVED and request.payload:
        apply_occupant_change(request, now)
    notify_tenant(request, comment.strip() or None)
    db.session.commit()


def staff_assign(request: TenantRequest, user_id: int | None, now: datetime) -> None:
    request.assigned_to_id, request.updated_at = user_id, now
    db.session.commit()


def apply_occupant_change(request: TenantRequest, now: datetime) -> None:
    """An accepted occupant declaration updates the occupants list (once: the payload records it)."""
    payload = dict(request.payload or {})
    if payload.get("applied_at"):
        return
    if payload.get("action") == "arrival":
        db.session.add(Occupant(
            household_id=request.household_id, lease_id=request.lease_id, last_name=payload["last_name"],
            first_name=payload["first_name"], relation=OccupantRelation[payload["relation"]],
            birth_date=date.fromisoformat(payload["birth_date"]) if payload.get("birth_date") else None,
            arrival_date=date.fromisoformat(payload["arrival_date"])))
    elif payload.get("action") == "departure":
        occupant = db.session.get(Occupant, payload["occupant_id"])
        if occupant is not None and occupant.household_id == request.household_id:
            occupant.departure_date = date.fromisoformat(payload["departure_date"])
    payload["applied_at"] = now.isoformat()
    request.payload = payload
