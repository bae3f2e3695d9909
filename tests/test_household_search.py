"""Issue 12, point 1: staff find a household from one box, by client number, lease number, name (whatever the
accents and case), e-mail, phone or street, through an index; bad queries get a message, never a 500."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Household, HouseholdSearchTerm, Lease, Occupant, OccupantRelation
from app.services import household_search
from app.services.household_search import SearchError, normalize, query_term

STAFF = "gestionnaire@example.org"


# --- normalisation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, term", [
    ("Gérard", "gerard"), ("GERARD", "gerard"), ("  gérard   DUPONT ", "gerard dupont"), ("Dubœuf", "duboeuf"),
    ("L/001234", "001234"), ("l 001234", "001234"), ("001234", "001234"), ("06 12 34 56 78", "0612345678"),
    ("06.12.34.56.78", "0612345678"), ("+33 6 12 34 56 78", "0612345678"), ("Jean-Luc", "jean luc"),
    ("Léa.Martin@Example.org", "lea.martin@example.org"), ("12 Rue de l'Église", "12 rue de l eglise"),
])
def test_queries_are_normalised_like_the_terms(typed, term):
    assert query_term(typed) == term


@pytest.mark.parametrize("typed", ["a", "%", "_", "'", "\\", "é", " ", "x" * 10_000, "%%", "' OR 1=1 --"[:1]])
def test_queries_that_cannot_be_one_get_a_message(typed):
    with pytest.raises(SearchError) as raised:
        query_term(typed)
    assert "caractères" in str(raised.value.message) or "lettres ou chiffres" in str(raised.value.message)


# --- the index follows the data --------------------------------------------------------------------------------------

@pytest.fixture
def gerard(app, demo):
    """A household whose names carry accents, with an occupant, a phone and an e-mail."""
    with app.app_context():
        lease = db.session.get(Lease, demo["other_lease"])
        household = lease.household
        household.signatory_first_name, household.signatory_last_name = "Gérard", "Lefèvre-Dubœuf"
        household.email, household.phone = "g.lefevre@exemple.fr", "+33 6 11 22 33 44"
        db.session.add(Occupant(household_id=household.id, lease_id=lease.id, first_name="Zoé", last_name="Œillet",
                                relation=OccupantRelation.CHILD, arrival_date=date(2020, 1, 1)))
        db.session.commit()
        return {"id": household.id, "client": household.client_number, "lease": lease.number,
                "street": lease.unit.street}


def found_ids(app, text: str) -> list[int]:
    with app.app_context():
        return [h.id for h in household_search.search(text).households]


@pytest.mark.parametrize("typed", ["gerard", "GÉRARD", "lefevre", "LEFÈVRE-DUBŒUF", "duboeuf", "gerard lefe",
                                   "lefevre duboeuf gerard", "oeillet", "zoe oeillet", "g.lefevre@exemple.fr",
                                   "06 11 22 33 44", "+33611223344"])
def test_a_household_is_found_by_any_of_its_names_e_mail_or_phone(app, gerard, typed):
    assert found_ids(app, typed) == [gerard["id"]]


def test_a_household_is_found_by_client_number_lease_number_and_street(app, gerard):
    assert found_ids(app, gerard["client"]) == [gerard["id"]]
    assert found_ids(app, f"L/{gerard['lease']}") == [gerard["id"]] == found_ids(app, gerard["lease"])
    street = gerard["street"].upper()  # e.g. « 12 RUE DES LILAS »: the whole street, and its telling word
    assert gerard["id"] in found_ids(app, street)
    word = max(normalize(street).split(), key=len)
    assert gerard["id"] in found_ids(app, word)


def test_the_terms_follow_changes_and_deletions(app, gerard):
    with app.app_context():
        household = db.session.get(Household, gerard["id"])
        household.signatory_last_name = "Nouveau-Nom"
        [occupant] = [o for o in household.occupants if o.last_name == "Œillet"]
        db.session.delete(occupant)
        db.session.commit()
    assert found_ids(app, "lefevre") == [] and found_ids(app, "oeillet") == []
    assert found_ids(app, "nouveau nom") == [gerard["id"]]
    with app.app_context():  # the account's sign-in address is a term too
        household = db.session.get(Household, gerard["id"])
        assert household.account is None
        db.session.rollback()
        terms = set(db.session.scalars(sa.select(HouseholdSearchTerm.term).where(
            HouseholdSearchTerm.household_id == gerard["id"])))
        assert "nouveau nom" in terms and "lefevre duboeuf" not in terms


def test_reindex_rebuilds_the_same_terms_in_sets(app, demo):
    with app.app_context():
        before = set(db.session.execute(sa.select(HouseholdSearchTerm.household_id, HouseholdSearchTerm.term)))
        db.session.execute(sa.delete(HouseholdSearchTerm))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["reindex-households", "--batch-size", "3"])
    assert result.exit_code == 0 and "8 households" in result.output, result.output
    with app.app_context():
        after = set(db.session.execute(sa.select(HouseholdSearchTerm.household_id, HouseholdSearchTerm.term)))
    assert after == before and len(before) > 8 * 5


def test_the_search_is_an_index_range_scan(app, demo):
    """The plan of the term lookup: the term index on both databases (PostgreSQL told not to prefer a scan of a
    table this small, to show the index is usable: a C-collated column takes a range on its btree)."""
    with app.app_context():
        query = sa.select(HouseholdSearchTerm.household_id).where(
            HouseholdSearchTerm.term >= "mart", HouseholdSearchTerm.term < "mart\x7f")
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        with db.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SET enable_seqscan = off"))
                plan = "\n".join(r[0] for r in connection.execute(sa.text(f"EXPLAIN {compiled}")))
            else:
                plan = "\n".join(r[-1] for r in connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_household_search_term_term" in plan, plan
    assert "Seq Scan" not in plan and "SCAN household_search_term" not in plan, plan


# --- the page --------------------------------------------------------------------------------------------------------

def test_one_match_opens_the_household(client_for, gerard):
    response = client_for(STAFF).get("/agence/recherche/?q=G%C3%A9rard+Lef%C3%A8vre")
    assert response.status_code == 302 and response.location.endswith(f"/agence/foyers/{gerard['id']}")


def test_several_matches_make_a_short_list(app, client_for, demo):
    with app.app_context():
        households = db.session.scalars(sa.select(Household)).all()
        for household in households[:3]:
            household.signatory_last_name = "Homonyme"
        db.session.commit()
    page = client_for(STAFF).get("/agence/recherche/?q=homonyme")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "3 foyers correspondent." in text
    assert text.count("/agence/foyers/") == 3


def test_more_than_the_limit_says_to_narrow(app, client_for, demo, monkeypatch):
    with app.app_context():
        for household in db.session.scalars(sa.select(Household).limit(3)):
            household.signatory_last_name = "Homonyme"
        db.session.commit()
    monkeypatch.setattr(household_search, "MAX_RESULTS", 2)
    text = client_for(STAFF).get("/agence/recherche/?q=homonyme").get_data(as_text=True)
    assert "Plus de 2 foyers correspondent" in text and "Précisez la recherche" in text
    assert text.count("/agence/foyers/") == 2


@pytest.mark.parametrize("typed", ["a", "%", "_", "'", "\\", "x" * 10_000])
def test_bad_queries_get_a_message_next_to_the_box(client_for, typed):
    response = client_for(STAFF).get("/agence/recherche/", query_string={"q": typed})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in text and ("au moins 2" in text or "100 caractères au plus" in text)


def test_nothing_found_says_so(client_for, demo):
    text = client_for(STAFF).get("/agence/recherche/?q=zzzzzz").get_data(as_text=True)
    assert "Aucun foyer ne correspond" in text


def test_the_box_is_in_every_staff_page_and_not_for_tenants(client_for, demo):
    assert 'id="staff-search-q"' in client_for(STAFF).get("/staffleaseview/list/").get_data(as_text=True)
    tenant = client_for("locataire@example.org")
    assert 'id="staff-search-q"' not in tenant.get("/").get_data(as_text=True)
    refused = tenant.get("/agence/recherche/?q=martin")
    assert refused.status_code in (302, 403, 404) and "Foyers trouvés" not in refused.get_data(as_text=True)
