"""The demo landlord: a believable French social landlord, created deterministically.

Household `i` always gets the same client number, names, dwelling and history, drawn from its own random
generator, so the command is idempotent (existing households are skipped) and can grow (`--households 20000`
after 200 adds the 19,800 missing ones). Rows are written in batches with multi-row inserts, one transaction per
batch: a crash leaves whole households, and a re-run completes the rest. The history covers the 24 months up to
`today`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from schwifty import IBAN

from app import roles
from app.extensions import db
from app.services import household_search
from app.models import (
    Agency, AuthorSide, ChargeStatement, ChargeStatementLine, Civility, Direction, DirectDebitMandate, Document,
    DocumentKind, EntryKind, EventKind, Household, HouseholdNote, InsuranceCertificate, Lease, LedgerEntry,
    MandateStatus, NoteKind, Occupant, OccupantRelation, PaymentStatus, PaymentTransaction, ProfessionalSituation,
    RequestCategory, RequestEvent, RequestStatus, Residence, ReviewStatus, StaffAgency, TenantAccount, TenantRequest,
    Unit, UnitKind, mandate_lease,
)

DEMO_PASSWORD = "Portail-2026!"
HISTORY_MONTHS = 24
DWELLINGS_PER_RESIDENCE = 30
BATCH = 250
CENT = Decimal("0.01")


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: str
    first_name: str
    last_name: str
    household_index: int | None = None
    agency_code: str | None = None  # a chargé de clientèle's agency


DEMO_ACCOUNTS = [
    DemoAccount("admin@example.org", roles.ADMIN, "Alice", "Administratrice"),
    DemoAccount("gestionnaire@example.org", roles.STAFF_LANDLORD, "Gaston", "Gestionnaire"),
    DemoAccount("locataire@example.org", roles.TENANT, "Léa", "Martin", household_index=0),
    DemoAccount("retard@example.org", roles.TENANT, "Karim", "Benali", household_index=1),
    DemoAccount("agence@example.org", roles.STAFF, "Claire", "Conseillère", agency_code="AG-ORL"),
]

AGENCIES = [
    ("AG-ORL", "Agence d'Orléans", "8 place du Martroi", "45000", "Orléans", "02 38 54 10 10"),
    ("AG-TRS", "Agence de Tours", "21 rue Nationale", "37000", "Tours", "02 47 05 20 20"),
    ("AG-BLO", "Agence de Blois", "5 rue Denis Papin", "41000", "Blois", "02 54 78 30 30"),
    ("AG-BRG", "Agence de Bourges", "14 rue Moyenne", "18000", "Bourges", "02 48 24 40 40"),
]
# (town, postcode, agency code)
TOWNS = [
    ("Orléans", "45000", "AG-ORL"), ("Fleury-les-Aubrais", "45400", "AG-ORL"), ("Saran", "45770", "AG-ORL"),
    ("Saint-Jean-de-Braye", "45800", "AG-ORL"), ("Montargis", "45200", "AG-ORL"),
    ("Tours", "37000", "AG-TRS"), ("Joué-lès-Tours", "37300", "AG-TRS"), ("Saint-Pierre-des-Corps", "37700", "AG-TRS"),
    ("Amboise", "37400", "AG-TRS"), ("Blois", "41000", "AG-BLO"), ("Vendôme", "41100", "AG-BLO"),
    ("Romorantin-Lanthenay", "41200", "AG-BLO"), ("Bourges", "18000", "AG-BRG"), ("Vierzon", "18100", "AG-BRG"),
    ("Saint-Amand-Montrond", "18200", "AG-BRG"),
]
STREETS = [
    "rue Jean Jaurès", "avenue de la Libération", "rue Victor Hugo", "rue des Lilas", "allée des Tilleuls",
    "boulevard Jean Moulin", "rue Pasteur", "rue du Général de Gaulle", "rue Jules Ferry", "place de la Mairie",
    "rue des Écoles", "avenue Pierre Mendès France", "rue Émile Zola", "rue de la Paix", "rue Anatole France",
    "chemin des Vignes", "rue Louise Michel", "rue des Acacias", "rue Marcel Pagnol", "avenue des Droits de l'Homme",
]
RESIDENCE_NAMES = [
    "Les Tilleuls", "Le Clos Fleuri", "Les Jardins de Loire", "La Source", "Les Acacias", "Le Parc", "Les Peupliers",
    "Val Fleuri", "Les Coteaux", "La Roseraie", "Les Charmilles", "Le Belvédère", "Les Grands Champs", "Beaulieu",
    "Les Chênes", "La Croix Blanche", "Les Mimosas", "Le Moulin", "Les Rives", "Bel Air",
]
LAST_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent", "Simon",
    "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard", "Bonnet", "Dupont",
    "Lambert", "Fontaine", "Rousseau", "Vincent", "Muller", "Faure", "André", "Mercier", "Blanc", "Guérin", "Boyer",
    "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia", "Perrin", "Robin", "Clément", "Morin",
    "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson", "Marchand", "Duval", "Denis", "Dumont", "Marie",
    "Lemaire", "Noël", "Meyer", "Dufour", "Meunier", "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas",
    "Brunet", "Gaillard", "Barbier", "Arnaud", "Martinez", "Gérard", "Roche", "Renard", "Schmitt", "Roy", "Leroux",
    "Colin", "Vidal", "Caron", "Picard", "Roger", "Fabre", "Aubert", "Lemoine", "Renaud", "Dumas", "Lacroix",
    "Olivier", "Philippe", "Bourgeois", "Pierre", "Benoît", "Rey", "Leclerc", "Payet", "Rolland", "Leclercq",
    "Guillaume", "Lecomte", "Lopez", "Jean", "Dupuy", "Guillot", "Hubert", "Berger", "Carpentier", "Sanchez",
    "Diallo", "Traoré", "Nguyen", "Benali", "Haddad", "Da Silva", "Ferreira", "Öztürk", "Kone",
]
FIRST_NAMES_F = ["Marie", "Nathalie", "Isabelle", "Sylvie", "Catherine", "Sandrine", "Céline", "Aurélie", "Julie",
                 "Camille", "Léa", "Chloé", "Emma", "Inès", "Sarah", "Fatima", "Aïcha", "Manon", "Hélène", "Océane"]
FIRST_NAMES_M = ["Jean", "Philippe", "Michel", "Alain", "Patrick", "Nicolas", "Christophe", "Pierre", "Laurent",
                 "Julien", "Thomas", "Lucas", "Hugo", "Mohamed", "Karim", "Antoine", "Sébastien", "Franck", "Yannick",
                 "Mathieu"]
INSURERS = ["MAIF", "MACIF", "MAAF", "Groupama", "AXA", "Allianz", "Matmut", "GMF", "Crédit Agricole Assurances",
            "Banque Populaire Assurances"]
BANKS = [("30004", "BNP Paribas"), ("30003", "Société Générale"), ("10278", "Crédit Mutuel"),
         ("11425", "Caisse d'Épargne Loire-Centre"), ("20041", "La Banque Postale"), ("14406", "Crédit Agricole")]
TECH_REQUESTS = [
    (RequestCategory.PLUMBING, "Fuite sous l'évier", "L'eau coule sous l'évier de la cuisine depuis deux jours."),
    (RequestCategory.HEATING, "Radiateur froid", "Le radiateur de la chambre reste froid malgré la purge."),
    (RequestCategory.LIFT, "Ascenseur en panne", "L'ascenseur est bloqué au 3e étage depuis ce matin."),
    (RequestCategory.ELECTRICITY, "Prise arrachée", "Une prise du salon est arrachée du mur."),
    (RequestCategory.DOORS_LOCKS, "Serrure bloquée", "La serrure de la porte d'entrée se bloque souvent."),
    (RequestCategory.COMMON_AREAS, "Éclairage du hall", "La lumière du hall d'entrée ne s'allume plus."),
    (RequestCategory.PESTS, "Cafards", "Des cafards apparaissent dans la cuisine la nuit."),
]
ADMIN_REQUESTS = [
    (RequestCategory.SITUATION_CHANGE, "Changement de situation", "J'ai retrouvé un emploi en CDI depuis ce mois."),
    (RequestCategory.OCCUPANT_ARRIVAL, "Arrivée d'un enfant", "Notre fille est née le mois dernier."),
    (RequestCategory.BILLING_ADDRESS, "Adresse de facturation", "Merci d'envoyer les courriers à mon adresse."),
]
MONTHS_FR = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
             "novembre", "décembre"]


class SeedError(ValueError):
    """Bad arguments for the demo seed."""


def client_number(index: int) -> str:
    """A stable, unique, arbitrary-looking 8-digit number (1000003 is prime, so this is a bijection)."""
    return f"{(1_000_003 * (index + 1)) % 90_000_000 + 10_000_000:08d}"


def lease_number(index: int) -> str:
    return f"{(100_019 * (index + 1)) % 900_000 + 100_000:06d}"


def month_start(day: date, months_back: int) -> date:
    month_index = day.year * 12 + day.month - 1 - months_back
    return date(month_index // 12, month_index % 12 + 1, 1)


def money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT)


def _utc(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


class DemoBuilder:
    """Builds the rows of a batch of households as plain dicts, then inserts them table by table."""

    def __init__(self, today: date):
        self.today = today
        self.periods = [month_start(today, back) for back in range(HISTORY_MONTHS - 1, -1, -1)]
        self.rows: dict[type, list[dict]] = {}

    def add(self, model, **values) -> dict:
        self.rows.setdefault(model, []).append(values)
        return values


def seed_demo(households: int, today: date | None = None, echo=print) -> dict:
    """Create the demo landlord up to `households` households. Returns counts for the report."""
    if households < 2:
        raise SeedError("--households must be at least 2 (the two demo tenants)")
    if households > 200_000:
        raise SeedError("--households must be at most 200000")
    today = today or date.today()
    started = time.perf_counter()
    agencies = _ensure_agencies()
    existing = set(db.session.scalars(sa.select(Household.client_number)))
    todo = [i for i in range(households) if client_number(i) not in existing]
    residences = _ensure_residences(agencies, households)
    created = 0
    for batch_start in range(0, len(todo), BATCH):
        batch = todo[batch_start:batch_start + BATCH]
        _insert_households(batch, residences, agencies, today)
        db.session.commit()
        created += len(batch)
        if created % 2000 < BATCH:
            echo(f"  {created} / {len(todo)} households")
    _ensure_demo_accounts(today)
    db.session.commit()
    return {"households_created": created, "households_total": len(existing) + created,
            "seconds": round(time.perf_counter() - started, 1)}


def _ensure_agencies() -> dict[str, int]:
    found = {a.code: a.id for a in db.session.scalars(sa.select(Agency))}
    for code, name, street, postcode, city, phone in AGENCIES:
        if code not in found:
            agency = Agency(code=code, name=name, street=street, postcode=postcode, city=city, phone=phone,
                            email=f"{code.lower()}@example.org",
                            opening_hours="Du lundi au vendredi, 8 h 30 - 12 h et 13 h 30 - 17 h")
            db.session.add(agency)
            db.session.flush()
            found[code] = agency.id
    return found


def _ensure_residences(agencies: dict[str, int], households: int) -> dict[int, Residence]:
    needed = (households + DWELLINGS_PER_RESIDENCE - 1) // DWELLINGS_PER_RESIDENCE
    found = {r.code: r for r in db.session.scalars(sa.select(Residence))}
    result = {}
    for r in range(needed):
        code = f"R{r + 1:04d}"
        if code not in found:
            rng = random.Random(f"residence-{r}")
            town, postcode, agency_code = TOWNS[r % len(TOWNS)] if r >= 2 else TOWNS[0]
            found[code] = Residence(
                code=code, name=f"{RESIDENCE_NAMES[r % len(RESIDENCE_NAMES)]}" + (f" {r // 20 + 1}" if r >= 20 else ""),
                agency_id=agencies[agency_code], street=f"{rng.randint(1, 120)} {rng.choice(STREETS)}",
                postcode=postcode, city=town, built_year=rng.randint(1955, 2015), has_lift=rng.random() < 0.5,
            )
            db.session.add(found[code])
        result[r] = found[code]
    db.session.flush()
    return result


def _insert_households(indexes: list[int], residences: dict[int, Residence], agencies: dict[str, int],
                       today: date) -> None:
    builder = DemoBuilder(today)
    plans = [_plan_household(i, residences[i // DWELLINGS_PER_RESIDENCE], today) for i in indexes]
    # Units and households first: their ids are needed by everything else.
    unit_rows = [unit for plan in plans for unit in plan["units"]]
    unit_ids = db.session.scalars(sa.insert(Unit).returning(Unit.id, sort_by_parameter_order=True), unit_rows).all()
    household_rows = [plan["household"] for plan in plans]
    household_ids = db.session.scalars(
        sa.insert(Household).returning(Household.id, sort_by_parameter_order=True), household_rows).all()
    unit_iter = iter(unit_ids)
    lease_rows, lease_plans = [], []
    for plan, household_id in zip(plans, household_ids):
        plan["household_id"] = household_id
        for lease in plan["leases"]:
            lease_rows.append(dict(lease["row"], household_id=household_id, unit_id=next(unit_iter)))
            lease_plans.append((plan, lease))
    lease_ids = db.session.scalars(
        sa.insert(Lease).returning(Lease.id, sort_by_parameter_order=True), lease_rows).all()
    for (plan, lease), lease_id in zip(lease_plans, lease_ids):
        lease["id"] = lease_id
    for plan in plans:
        _history(builder, plan)
        _promise(builder, plan)
    for model in (Occupant, LedgerEntry, Document, InsuranceCertificate, DirectDebitMandate, PaymentTransaction,
                  HouseholdNote):
        if builder.rows.get(model):
            db.session.execute(sa.insert(model), builder.rows[model])
    if builder.rows.get(DirectDebitMandate):  # a demo mandate covers every lease of its household
        references = [row["reference"] for row in builder.rows[DirectDebitMandate]]
        db.session.execute(sa.insert(mandate_lease).from_select(
            ["mandate_id", "lease_id"], sa.select(DirectDebitMandate.id, Lease.id).join(
                Lease, Lease.household_id == DirectDebitMandate.household_id).where(
                DirectDebitMandate.reference.in_(references))))
    _insert_requests(builder)
    _insert_statements(builder)
    household_search.reindex(household_ids)  # bulk inserts pass by the ORM's hook


def _insert_statements(builder: DemoBuilder) -> None:
    plans = builder.rows.get("statements", [])
    if not plans:
        return
    ids = db.session.scalars(sa.insert(ChargeStatement).returning(ChargeStatement.id, sort_by_parameter_order=True),
                             [row for row, _ in plans]).all()
    db.session.execute(sa.insert(ChargeStatementLine),
                       [dict(line, statement_id=sid) for (_, lines), sid in zip(plans, ids) for line in lines])


def _plan_household(i: int, residence: Residence, today: date) -> dict:
    rng = random.Random(f"household-{i}")
    woman = rng.random() < 0.55
    first_name = rng.choice(FIRST_NAMES_F if woman else FIRST_NAMES_M)
    last_name = rng.choice(LAST_NAMES)
    profile = {"arrears": rng.random() < 0.06, "parking": rng.random() < 0.3,
               "payment": rng.choices(["direct_debit", "card", "transfer", "cheque"], [45, 20, 20, 15])[0],
               "benefit": rng.random() < 0.4}
    if i == 0:  # locataire@example.org: up to date, dwelling + parking, pays by direct debit
        woman, first_name, last_name = True, "Léa", "Martin"
        profile.update(arrears=False, parking=True, payment="direct_debit", benefit=True)
    elif i == 1:  # retard@example.org: arrears, no mandate
        woman, first_name, last_name = False, "Karim", "Benali"
        profile.update(arrears=True, parking=False, payment="card", benefit=True)
    n = i % DWELLINGS_PER_RESIDENCE
    typology = rng.choices(["T1", "T2", "T3", "T4", "T5"], [10, 25, 35, 22, 8])[0]
    rooms = int(typology[1])
    surface = money(18 + rooms * 17 + rng.randint(-5, 8))
    rent = money(float(surface) * rng.uniform(5.6, 7.4))
    charges = money(35 + rooms * 14 + rng.randint(0, 20))
    floor = n // 4
    apartment = f"Bât. {chr(65 + n // 12)}, {floor}e étage, porte {n + 1:02d}" if floor else \
        f"Bât. {chr(65 + n // 12)}, rez-de-chaussée, porte {n + 1:02d}"
    years_ago = rng.randint(2, 22)
    start = date(today.year - years_ago, rng.randint(1, 12), 1)
    units = [dict(reference=f"{residence.code}-{n + 1:03d}", residence_id=residence.id, kind=UnitKind.DWELLING,
                  typology=typology, floor=floor, surface_m2=surface, street=residence.street, complement=apartment,
                  postcode=residence.postcode, city=residence.city)]
    benefit = money(rng.uniform(0.25, 0.7) * float(rent)) if profile["benefit"] else Decimal("0.00")
    leases = [{"kind": UnitKind.DWELLING, "slot": 2 * i, "row": dict(
        number=lease_number(2 * i), start_date=start, rent=rent, charges=charges, housing_benefit=benefit,
        deposit=rent, created_at=_utc(start))}]
    if profile["parking"]:
        parking_start = max(start, month_start(today, rng.randint(6, 60)))
        units.append(dict(reference=f"{residence.code}-P{n + 1:03d}", residence_id=residence.id,
                          kind=UnitKind.PARKING, street=residence.street, complement=f"Parking, place {n + 1}",
                          postcode=residence.postcode, city=residence.city))
        parking_rent = money(rng.choice([18, 22, 25, 30, 35]))
        leases.append({"kind": UnitKind.PARKING, "slot": 2 * i + 1, "row": dict(
            number=lease_number(2 * i + 1), start_date=parking_start, rent=parking_rent, charges=Decimal("0.00"),
            housing_benefit=Decimal("0.00"), deposit=parking_rent, created_at=_utc(parking_start))})
    situation = rng.choice(list(ProfessionalSituation))
    household = dict(
        client_number=client_number(i), agency_id=residence.agency_id,
        signatory_civility=Civility.MADAME if woman else Civility.MONSIEUR,
        signatory_last_name=last_name, signatory_first_name=first_name,
        email=f"{_ascii(first_name)}.{_ascii(last_name)}.{i}@example.net",
        phone=f"06 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        professional_situation=situation, billing_street=residence.street, billing_complement=apartment,
        billing_postcode=residence.postcode, billing_city=residence.city,
        paperless_consent=rng.random() < 0.5, created_at=_utc(start),
    )
    if i in (0, 1):
        household["email"] = DEMO_ACCOUNTS[2 + i].email
    return {"index": i, "rng": rng, "profile": profile, "units": units, "leases": leases, "household": household,
            "woman": woman, "first_name": first_name, "last_name": last_name, "residence": residence}


def _ascii(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if c.isalnum() and c.isascii())


def _history(builder: DemoBuilder, plan: dict) -> None:
    rng, profile, household_id = plan["rng"], plan["profile"], plan["household_id"]
    today = builder.today
    dwelling = plan["leases"][0]
    _occupants(builder, plan, dwelling)
    mandate_day = rng.choice([2, 7, 10])
    missed = set()
    if profile["arrears"]:
        missed = {p for p in builder.periods[-rng.randint(2, 5):]}
    for lease in plan["leases"]:
        row, lease_id = lease["row"], lease["id"]
        for period in builder.periods:
            if period < month_start(row["start_date"], 0):
                continue
            key = f"{period:%Y-%m}"
            label_month = f"{MONTHS_FR[period.month - 1]} {period.year}"
            due = period.replace(day=10)
            total = row["rent"] + row["charges"]
            builder.add(LedgerEntry, household_id=household_id, lease_id=lease_id, kind=EntryKind.DUE_NOTICE,
                        direction=Direction.DEBIT, amount=total, rent_part=row["rent"], charges_part=row["charges"],
                        label=f"Avis d'échéance {label_month}", entry_date=period, due_date=due, period=key,
                        created_at=_utc(period))
            builder.add(Document, household_id=household_id, lease_id=lease_id, kind=DocumentKind.DUE_NOTICE,
                        period=key, title=f"Avis d'échéance {label_month}", created_at=_utc(period))
            to_pay = total
            if row["housing_benefit"] > 0:
                benefit_day = period.replace(day=5)
                if benefit_day <= today:
                    builder.add(LedgerEntry, household_id=household_id, lease_id=lease_id,
                                kind=EntryKind.HOUSING_BENEFIT, direction=Direction.CREDIT,
                                amount=row["housing_benefit"], label=f"APL versée par la CAF - {label_month}",
                                entry_date=benefit_day, period=key, created_at=_utc(benefit_day))
                to_pay -= row["housing_benefit"]
            if lease["kind"] is UnitKind.DWELLING and period.month == 7:
                to_pay += _regularisation(builder, plan, lease, period.year)
            _payment(builder, plan, lease, period, key, label_month, to_pay, missed, mandate_day)
    if profile["payment"] == "direct_debit":
        bank_code, bank_name = rng.choice(BANKS)
        iban = IBAN.generate("FR", bank_code=bank_code, branch_code=f"{rng.randint(0, 99999):05d}",
                             account_code=f"{rng.randint(0, 10 ** 11 - 1):011d}")
        holder = f"{plan['first_name']} {plan['last_name']}".upper()
        signed = max(dwelling["row"]["start_date"], month_start(today, 30))
        builder.add(DirectDebitMandate, reference=f"EL-{plan['household']['client_number']}-{dwelling['row']['number']}-1",
                    household_id=household_id, lease_id=dwelling["id"], iban=str(iban),
                    bic=str(iban.bic) if iban.bic else None, bank_name=bank_name, account_holder=holder,
                    debit_day=mandate_day, status=MandateStatus.ACTIVE, signed_on=signed,
                    activated_at=_utc(signed + timedelta(days=3)),
                    last_collection_on=month_start(today, 0).replace(day=mandate_day)
                    if month_start(today, 0).replace(day=mandate_day) <= today
                    else month_start(today, 1).replace(day=mandate_day),
                    created_at=_utc(signed))
    _insurance(builder, plan, dwelling)
    _requests(builder, plan, dwelling)


def _payment(builder, plan, lease, period, key, label_month, amount, missed, mandate_day) -> None:
    rng, profile, today = plan["rng"], plan["profile"], builder.today
    if amount <= 0:
        return
    if period in missed and (plan["index"] == 1 or rng.random() < 0.85):
        if rng.random() < 0.4:  # a partial payment
            amount = money(float(amount) * rng.choice([0.3, 0.5]))
        else:
            return
    method = profile["payment"]
    if method == "direct_debit":
        pay_day = period.replace(day=mandate_day)
        kind, label = EntryKind.DIRECT_DEBIT, f"Prélèvement SEPA - {label_month}"
    else:
        pay_day = period.replace(day=rng.randint(3, 12))
        kind, label = {"card": (EntryKind.CARD_PAYMENT, f"Paiement par carte - {label_month}"),
                       "transfer": (EntryKind.TRANSFER, f"Virement reçu - {label_month}"),
                       "cheque": (EntryKind.CHEQUE, f"Chèque reçu - {label_month}")}[method]
    if pay_day > today:
        return
    ref = f"demo-{plan['household']['client_number']}-{lease['row']['number']}-{key}"
    builder.add(LedgerEntry, household_id=plan["household_id"], lease_id=lease["id"], kind=kind,
                direction=Direction.CREDIT, amount=amount, label=label, entry_date=pay_day, period=key,
                external_ref=ref, created_at=_utc(pay_day, 14))
    if method == "card":
        builder.add(PaymentTransaction, household_id=plan["household_id"], lease_id=lease["id"],
                    order_id=f"EL{plan['household']['client_number']}{lease['row']['number']}{period:%y%m}",
                    # unique per UTC day: a lease pays at most once a month
                    trans_id=f"{lease['slot'] % 900_000:06d}", trans_day=pay_day, amount=amount, currency="978",
                    ctx_mode="TEST", status=PaymentStatus.PAID, bank_status="CAPTURED", bank_result="00",
                    trans_uuid=f"{rng.getrandbits(128):032x}", notified_at=_utc(pay_day, 14),
                    created_at=_utc(pay_day, 13))


CHARGE_NATURES = [
    ("Eau froide et eau chaude", "water"),
    ("Chauffage collectif", "surface"),
    ("Entretien et nettoyage des parties communes", "shares"),
    ("Électricité des parties communes", "shares"),
    ("Ascenseur", "shares"),
    ("Taxe d'enlèvement des ordures ménagères", "surface"),
    ("Espaces verts", "shares"),
]


def _regularisation(builder: DemoBuilder, plan: dict, lease: dict, year: int) -> Decimal:
    """The yearly charge statement for `year - 1` (per nature of charge) and its ledger entry, posted mid-June
    and settled with July's payment.

    Returns what it adds to what the tenant pays in July (negative for a refund deducted from it).
    """
    rng, row = plan["rng"], lease["row"]
    day = date(year, 6, 15)
    if day < row["start_date"] or day > builder.today:
        return Decimal("0.00")
    charge_year = year - 1
    start = row["start_date"]
    months = 12 if start.year < charge_year else (13 - start.month if start.year == charge_year else 0)
    if months == 0:
        return Decimal("0.00")
    provisions = row["charges"] * months
    natures = [n for n in CHARGE_NATURES if n[0] != "Ascenseur" or plan["residence"].has_lift]
    weights = [rng.uniform(0.5, 3.0) for _ in natures]
    actual = provisions * Decimal(str(round(rng.uniform(0.82, 1.25), 3)))
    surface = plan["units"][0]["surface_m2"]
    building_surface = Decimal(DWELLINGS_PER_RESIDENCE * 62)
    shares_per_thousand = 1000 // DWELLINGS_PER_RESIDENCE
    lines, total_share, total_provisions = [], Decimal("0.00"), Decimal("0.00")
    for index, ((nature, key), weight) in enumerate(zip(natures, weights)):
        last = index == len(natures) - 1
        share = (actual - total_share) if last else money(float(actual) * weight / sum(weights))
        paid = (provisions - total_provisions) if last else money(float(provisions) * weight / sum(weights))
        total_share, total_provisions = total_share + share, total_provisions + paid
        if key == "water":
            split, ratio = "Consommation relevée au compteur", Decimal("0.04")
        elif key == "surface":
            split, ratio = f"{surface:.0f} m² sur {building_surface:.0f} m²", surface / building_surface
        else:
            split, ratio = f"{shares_per_thousand} / 1000 tantièmes", Decimal(shares_per_thousand) / 1000
        lines.append(dict(nature=nature, split_key=split, building_expense=money(float(share / ratio)),
                          tenant_share=money(float(share)), provisions_paid=money(float(paid))))
    delta = money(float(total_share - total_provisions))
    builder.rows.setdefault("statements", []).append((dict(
        household_id=plan["household_id"], lease_id=lease["id"], year=charge_year,
        days_occupied=min(365, months * 30 + (5 if months == 12 else 0)), created_at=_utc(day)), lines))
    builder.add(LedgerEntry, household_id=plan["household_id"], lease_id=lease["id"],
                kind=EntryKind.REGULARISATION, direction=Direction.DEBIT if delta > 0 else Direction.CREDIT,
                amount=abs(delta), label=f"Régularisation des charges {charge_year}", entry_date=day,
                due_date=date(year, 7, 10) if delta > 0 else None, period=f"{charge_year}",
                external_ref=f"demo-regul-{row['number']}-{charge_year}", created_at=_utc(day))
    builder.add(Document, household_id=plan["household_id"], lease_id=lease["id"],
                kind=DocumentKind.CHARGE_STATEMENT, period=f"{charge_year}",
                title=f"Régularisation des charges {charge_year}", created_at=_utc(day))
    return delta


def _occupants(builder: DemoBuilder, plan: dict, dwelling: dict) -> None:
    rng, start = plan["rng"], dwelling["row"]["start_date"]
    common = dict(household_id=plan["household_id"], lease_id=dwelling["id"], arrival_date=start)
    builder.add(Occupant, last_name=plan["last_name"], first_name=plan["first_name"],
                birth_date=date(rng.randint(1950, 1998), rng.randint(1, 12), rng.randint(1, 28)),
                relation=OccupantRelation.SIGNATORY, **common)
    if rng.random() < 0.45:
        builder.add(Occupant, last_name=plan["last_name"],
                    first_name=rng.choice(FIRST_NAMES_M if plan["woman"] else FIRST_NAMES_F),
                    birth_date=date(rng.randint(1950, 1998), rng.randint(1, 12), rng.randint(1, 28)),
                    relation=OccupantRelation.SPOUSE, **common)
    for _ in range(rng.choices([0, 1, 2, 3], [40, 25, 25, 10])[0]):
        builder.add(Occupant, last_name=plan["last_name"], first_name=rng.choice(FIRST_NAMES_F + FIRST_NAMES_M),
                    birth_date=date(rng.randint(2005, 2022), rng.randint(1, 12), rng.randint(1, 28)),
                    relation=OccupantRelation.CHILD, **common)


def _insurance(builder: DemoBuilder, plan: dict, dwelling: dict) -> None:
    rng, today = plan["rng"], builder.today
    roll = rng.random()
    if plan["index"] == 0:
        roll = 0.5  # the demo tenant is insured
    if roll < 0.05:
        return  # never sent one
    start = date(today.year - (1 if (today.month, today.day) < (9, 1) else 0), 9, 1)
    if roll < 0.12:
        start = date(start.year - 1, 9, 1)  # expired: last year's certificate
    end = date(start.year + 1, 8, 31)
    status = ReviewStatus.PENDING if 0.12 <= roll < 0.15 else ReviewStatus.VALIDATED
    created = _utc(min(start, today) - timedelta(days=rng.randint(0, 20)))
    builder.add(InsuranceCertificate, household_id=plan["household_id"], lease_id=dwelling["id"],
                insurer=rng.choice(INSURERS), policy_number=f"{rng.randint(10 ** 7, 10 ** 8 - 1)}",
                start_date=start, end_date=end, status=status, created_at=created,
                decided_at=None if status is ReviewStatus.PENDING else created + timedelta(days=1))


def _promise(builder: DemoBuilder, plan: dict) -> None:
    """A household in arrears called its agency a few days ago and promised to pay part of it."""
    if not plan["profile"]["arrears"]:
        return
    rng, today = plan["rng"], builder.today
    called = today - timedelta(days=rng.randint(2, 8))
    builder.add(HouseholdNote, household_id=plan["household_id"], kind=NoteKind.PAYMENT_PROMISE,
                body="Appel du locataire : il réglera une partie de l'arriéré par virement.",
                promised_amount=money(rng.choice([100, 150, 200, 300])), promised_on=called + timedelta(days=15),
                created_at=_utc(called, hour=rng.randint(9, 16)))


def _requests(builder: DemoBuilder, plan: dict, dwelling: dict) -> None:
    """Plan a few requests (about one household in eight; both demo tenants have some)."""
    rng, today, index = plan["rng"], builder.today, plan["index"]
    count = 2 if index in (0, 1) else (1 if rng.random() < 0.12 else 0)
    for k in range(count):
        technical = rng.random() < 0.7 or (index == 0 and k == 0)
        category, subject, description = rng.choice(TECH_REQUESTS if technical else ADMIN_REQUESTS)
        created = _utc(today - timedelta(days=rng.randint(1, 300)), hour=rng.randint(7, 20))
        status = RequestStatus.IN_PROGRESS if (index in (0, 1) and k == 0) else rng.choice(
            [RequestStatus.SUBMITTED, RequestStatus.IN_PROGRESS, RequestStatus.RESOLVED, RequestStatus.CLOSED,
             RequestStatus.CLOSED])
        events = [dict(kind=EventKind.COMMENT, author_side=AuthorSide.TENANT, body=description, created_at=created)]
        if status is not RequestStatus.SUBMITTED:
            events.append(dict(kind=EventKind.STATUS_CHANGE, author_side=AuthorSide.STAFF,
                               old_status=RequestStatus.SUBMITTED, new_status=RequestStatus.IN_PROGRESS,
                               body="Votre demande est prise en charge par votre agence.",
                               created_at=created + timedelta(days=1)))
        if status in (RequestStatus.RESOLVED, RequestStatus.CLOSED):
            events.append(dict(kind=EventKind.STATUS_CHANGE, author_side=AuthorSide.STAFF,
                               old_status=RequestStatus.IN_PROGRESS, new_status=status,
                               body="L'intervention a été réalisée.", created_at=created + timedelta(days=6)))
        builder.rows.setdefault("requests", []).append((dict(
            number=f"D{created:%y%m}-{client_number(index)}-{k + 1}", household_id=plan["household_id"],
            lease_id=dwelling["id"], agency_id=plan["residence"].agency_id,
            kind=category.kind, category=category, common_areas=category is RequestCategory.COMMON_AREAS,
            subject=subject, description=description, access_info="Joignable en semaine après 17 h.",
            status=status, created_at=created, updated_at=events[-1]["created_at"],
            resolved_at=events[-1]["created_at"] if status in (RequestStatus.RESOLVED, RequestStatus.CLOSED) else None,
        ), events))


def _insert_requests(builder: DemoBuilder) -> None:
    plans = builder.rows.get("requests", [])
    if not plans:
        return
    ids = db.session.scalars(sa.insert(TenantRequest).returning(TenantRequest.id, sort_by_parameter_order=True),
                             [row for row, _ in plans]).all()
    events = [dict(event, request_id=request_id) for (_, request_events), request_id in zip(plans, ids)
              for event in request_events]
    db.session.execute(sa.insert(RequestEvent), events)


def _ensure_demo_accounts(today: date) -> None:
    """The demo accounts, all with the password `Portail-2026!`; tenants linked to their household, the agency's
    chargée de clientèle to her agency."""
    sm = current_app.appbuilder.sm
    for account in DEMO_ACCOUNTS:
        user = sm.find_user(email=account.email)
        if user is None:
            role = sm.find_role(account.role)
            user = sm.add_user(account.email, account.first_name, account.last_name, account.email, [role],
                               password=DEMO_PASSWORD)
            if not user:
                raise RuntimeError(f"could not create the demo account {account.email}")
            if account.agency_code:
                db.session.add(StaffAgency(user_id=user.id, agency_id=db.session.scalar(
                    sa.select(Agency.id).where(Agency.code == account.agency_code))))
        if account.household_index is None:
            continue
        household = db.session.scalar(sa.select(Household).where(
            Household.client_number == client_number(account.household_index)))
        if household is not None and db.session.scalar(
                sa.select(TenantAccount.id).where(TenantAccount.household_id == household.id)) is None:
            db.session.add(TenantAccount(user_id=user.id, household_id=household.id,
                                         activated_at=_utc(today - timedelta(days=200))))
