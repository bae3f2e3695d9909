"""Tenant requests (« demandes »): creating them and reading a household's list.

Occupant declarations are administrative requests carrying a structured payload, applied to the occupants list
when staff accept them.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from app.extensions import db
from app.models import (
    AuthorSide, EventKind, Household, Lease, Occupant, OccupantRelation, RequestCategory, RequestEvent,
    RequestStatus, TenantRequest, UnitKind,
)

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
                   author_id: int | None = None) -> TenantRequest:
    request = TenantRequest(
        number=_number(now), household_id=household.id, lease_id=lease.id if lease else None,
        agency_id=household.agency_id, kind=category.kind, category=category,
        common_areas=category is RequestCategory.COMMON_AREAS, subject=subject, description=description,
        access_info=access_info, status=RequestStatus.SUBMITTED, payload=payload, created_at=now, updated_at=now)
    db.session.add(request)
    db.session.flush()
    db.session.add(RequestEvent(request_id=request.id, kind=EventKind.COMMENT, author_side=AuthorSide.TENANT,
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
                      author_id: int | None = None) -> TenantRequest:
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
