"""Browser journey in real Chromium (issue 10): a household with a dwelling and a parking subscribes to direct debit
for both, staff activate the mandate, the month is announced, staff build and download the bank file, the debit is
settled on its date (the tenant gets a quittance for each lease), then the bank returns it and the tenant sees the
reject and no quittance any more."""

from __future__ import annotations

import io
from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from app.extensions import db
from app.models import DirectDebitCollection, DirectDebitMandate, Household, MandateStatus, utcnow
from app.services import direct_debits, rent_calls
from tests import bank_files
from tests.browser import serious_violations, serve_demo, staff_page
from tests.samples import pdf_bytes, write
from tests.test_browser_tenant import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serve_demo(tmp_path_factory.mktemp("browser-debit"), 4) as served:
        application = served[0]
        with application.app_context():  # locataire@example.org: a dwelling and a parking, no mandate yet
            household = db.session.scalar(sa.select(Household).join(Household.account).where(
                Household.email == "locataire@example.org"))
            db.session.execute(sa.update(DirectDebitMandate).where(DirectDebitMandate.household_id == household.id)
                               .values(status=MandateStatus.REVOKED))
            db.session.commit()
            rent_calls.call_rents(rent_calls.next_period(date.today()), utcnow())
        yield served


def pdf_text(path) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(open(path, "rb").read())).pages).split())


def test_dwelling_and_parking_from_subscription_to_settlement_then_a_return(live, tmp_path):
    application, server, browser = live
    month = rent_calls.next_period(date.today())
    rib = write(tmp_path / "rib.pdf", pdf_bytes())

    # The tenant subscribes, for both leases (ticked by default), on a phone.
    tenant = sign_in(browser, server, "locataire@example.org", width=360)
    tenant.goto(f"{server.url}/paiement/")
    tenant.get_by_role("link", name="Souscrire au prélèvement automatique").click()
    tenant.wait_for_selector("text=Contrats payés par ce prélèvement")
    boxes = tenant.get_by_role("group", name="Contrats payés par ce prélèvement").get_by_role("checkbox")
    assert boxes.count() == 2 and all(boxes.nth(i).is_checked() for i in range(2))
    tenant.get_by_label("IBAN", exact=True).fill("FR76 3000 4008 1900 0123 4567 879")
    tenant.get_by_label("Jour du prélèvement").select_option("7")
    tenant.get_by_label("Votre RIB (PDF ou photo)").set_input_files(str(rib))
    tenant.get_by_label("J'autorise le prélèvement").check()
    tenant.get_by_role("button", name="Vérifier mes informations").click()
    tenant.wait_for_selector("text=Vérifiez votre demande de prélèvement")
    review = tenant.locator("main").inner_text()
    assert "Logement" in review and "Stationnement" in review
    tenant.get_by_role("button", name="Valider ma demande").click()
    tenant.wait_for_selector("text=est prêt")
    payment = tenant.locator("main").inner_text()
    assert "Contrats payés par ce prélèvement : Logement" in payment and "Stationnement" in payment

    # Staff activate the signed mandate from their queue.
    staff = staff_page(browser, server)
    staff.goto(f"{server.url}/staffmandatequeueview/list/")
    staff.locator("a[href*='/staffmandatequeueview/show/']").first.click()
    staff.wait_for_selector("text=Mandat signé reçu ?")
    assert "Stationnement" in staff.locator("body").inner_text()
    staff.get_by_label("Décision").select_option("activate")
    staff.get_by_label("Date de signature du mandat").fill(date.today().isoformat())
    staff.get_by_role("button", name="Enregistrer").click()
    staff.wait_for_selector("text=Décision enregistrée")

    # The scheduler announces the month: the tenant sees the coming debit.
    with application.app_context():
        direct_debits.prenotify(month - timedelta(days=20), utcnow())
        collection = db.session.scalar(sa.select(DirectDebitCollection).join(DirectDebitMandate).where(
            DirectDebitMandate.status == MandateStatus.ACTIVE, DirectDebitMandate.debit_day == 7,
            DirectDebitMandate.account_holder != "", DirectDebitCollection.period == f"{month:%Y-%m}")
            .order_by(DirectDebitCollection.id.desc()))
        assert len(collection.shares) == 2
        amount, end_to_end, collection_date = collection.amount, collection.end_to_end_id, collection.collection_date
    tenant.goto(f"{server.url}/paiement/")
    assert "(à venir)" in tenant.locator("main").inner_text()
    assert serious_violations(tenant) == []  # at 360 px, with the coming debit

    # Staff preview and build the file of the 7th from the back office, then download it.
    staff.goto(f"{server.url}/agence/prelevements/fichier")
    staff.get_by_label("Mois").select_option(f"{month:%Y-%m}")
    staff.get_by_label("Jour de prélèvement").select_option("7")
    staff.get_by_role("button", name="Afficher").click()
    staff.wait_for_selector("text=Préparer le fichier (")
    assert serious_violations(staff) == []
    staff.get_by_role("button", name="Préparer le fichier").click()
    staff.wait_for_selector("text=Fichier préparé")
    with staff.expect_download() as info:
        staff.get_by_role("link", name="Télécharger le fichier pain.008").click()
    xml = open(info.value.path(), "rb").read()
    message_id = ElementTree.fromstring(xml).find(".//{*}GrpHdr/{*}MsgId").text
    assert end_to_end.encode() in xml

    # On the collection date the debit is settled: no « à venir » left, a quittance for each lease.
    with application.app_context():
        direct_debits.settle(collection_date, utcnow())
    tenant.goto(f"{server.url}/paiement/")
    assert "(à venir)" not in tenant.locator("main").inner_text()
    tenant.goto(f"{server.url}/documents/")
    month_names = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
                   "octobre", "novembre", "décembre"]
    label = f"Quittance {month_names[month.month - 1]} {month.year}"
    links = tenant.get_by_role("link", name=label)
    assert links.count() == 2, tenant.locator("main").inner_text()[:800]
    with tenant.expect_download() as info:
        links.first.click()
    assert "QUITTANCE" in pdf_text(info.value.path()).upper()

    # The bank returns the debit: staff import its camt.054, the tenant is told and loses the quittances.
    answer = write(tmp_path / "camt054.xml", bank_files.camt054_return(
        "C054-BROWSER", message_id, end_to_end, amount, date.today()))  # booked today (settled in the future: a test)
    staff.goto(f"{server.url}/agence/prelevements/retours")
    staff.get_by_label("Fichier de la banque").set_input_files(str(answer))
    staff.get_by_role("button", name="Importer").click()
    staff.wait_for_selector("text=Retour appliqué")
    assert "1 rejets appliqués" in staff.locator("body").inner_text()
    assert serious_violations(staff) == []
    tenant.goto(f"{server.url}/paiement/")
    assert "Rejet du prélèvement" in tenant.locator("main").inner_text()
    tenant.goto(f"{server.url}/documents/")
    tenant.wait_for_selector("text=Quittances")
    assert tenant.get_by_role("link", name=label).count() == 0
    assert serious_violations(tenant) == []

    # The accountants' export carries the settled debit and its return, traceable by the file's message id.
    staff.goto(f"{server.url}/agence/export-comptable/")
    assert serious_violations(staff) == []
    staff.get_by_label("Date de début").fill((date.today() - timedelta(days=1)).isoformat())
    staff.get_by_label("Date de fin").fill(max(date.today(), collection_date).isoformat())
    with staff.expect_download() as info:
        staff.get_by_role("button", name="Télécharger le fichier CSV").click()
    export = open(info.value.path(), encoding="utf-8-sig").read()
    assert "REJET_PRELEVEMENT" in export and "PRELEVEMENT" in export and message_id in export
    staff.close()
    tenant.close()
