"""Secrets at rest (issue 11, finding 4): sent mail keeps no link, the IBAN is encrypted in the database and in
the subscription draft of the session cookie, keys rotate, production refuses a missing or development key."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask_migrate import downgrade, upgrade

from app import crypto, filestore
from app.extensions import db
from app.mail import without_links
from app.models import DirectDebitMandate, Document, DocumentKind, Household
from config import DEV_DATA_ENCRYPTION_KEY, DEV_DATA_ENCRYPTION_SEED, ConfigError, load_config
from tests.conftest import csrf_token
from tests.mailbox import link_in
from tests.test_config import production_env  # noqa: F401  (a fixture)
from tests.samples import pdf_bytes
from tests.test_direct_debits import Cycle
from tests.test_sepa import GOOD_IBAN, subscribe, subscribe_step1

BASE = "http://127.0.0.1:8080"
COMPACT_IBAN = GOOD_IBAN.replace(" ", "")


def raw_rows(app, sql: str, **params) -> list:
    """Rows as the database holds them, without the ORM's types (what a database reader or a backup sees)."""
    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(sa.text(sql), params).all()


def shows_iban(raw: str, iban: str) -> bool:
    """Whether `raw` holds the IBAN or any 8 consecutive characters of its digits (fewer would match random hex)."""
    digits = iban[2:]
    return iban in raw or any(digits[i:i + 8] in raw for i in range(len(digits) - 7))


# --- mail: sent messages keep no link ---------------------------------------------------------------------------

def test_sent_activation_and_reset_mail_keep_no_link_in_the_table(app, demo, mailbox):
    with app.app_context():
        newcomer = db.session.get(Household, demo["other"])
        number, surname = newcomer.client_number, newcomer.signatory_last_name
    client = app.test_client()
    client.post("/compte/creer", data={
        "csrf_token": csrf_token(client, "/compte/creer"), "reference": number, "surname": surname,
        "email": "nouveau@example.net", "password": "Tr0mpette-99!", "confirm": "Tr0mpette-99!", "terms": "y"})
    client.post("/compte/mot-de-passe-oublie", data={
        "csrf_token": csrf_token(client, "/compte/mot-de-passe-oublie"), "email": "locataire@example.org"})
    assert mailbox.deliver() == 2
    links = [link_in(mailbox.last_to("nouveau@example.net"), BASE),
             link_in(mailbox.last_to("locataire@example.org"), BASE)]
    assert links[0].startswith("/compte/activer/") and links[1].startswith("/compte/nouveau-mot-de-passe/")
    tokens = [link.rstrip("/").rsplit("/", 1)[-1] for link in links]
    rows = raw_rows(app, "SELECT subject, text_body, html_body, sent_at FROM outgoing_mail")
    assert len(rows) == 2 and all(row.sent_at is not None for row in rows)
    for row in rows:
        stored = " ".join(row[:3])
        assert "/compte/" not in stored and "://" not in stored
        assert not any(token in stored for token in tokens)
        assert "[lien retiré après envoi]" in row.text_body  # the rest of the message stays readable
    assert client.get(links[0]).status_code == 302  # the mail the tenant got still works


def test_a_message_that_failed_keeps_its_link_for_the_retry(app, demo, mailbox, smtp_server):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    client = app.test_client()
    app.config["MAIL_PORT"] = closed_port
    client.post("/compte/mot-de-passe-oublie", data={
        "csrf_token": csrf_token(client, "/compte/mot-de-passe-oublie"), "email": "locataire@example.org"})
    assert mailbox.deliver() == 0
    [(body, attempts)] = raw_rows(app, "SELECT text_body, attempts FROM outgoing_mail")
    assert attempts == 1 and "/compte/nouveau-mot-de-passe/" in body
    app.config["MAIL_PORT"] = smtp_server.port
    assert mailbox.deliver() == 1
    [(body,)] = raw_rows(app, "SELECT text_body FROM outgoing_mail")
    assert "/compte/" not in body
    assert "/compte/nouveau-mot-de-passe/" in link_in(mailbox.last_to("locataire@example.org"), BASE)


def test_links_are_removed_from_text_and_html():
    html = '<p><a href="https://portail.example.org/compte/activer/abc.DEF-123?x=1&amp;y=2">Activer</a></p>'
    assert without_links(html) == '<p><a href="[lien retiré après envoi]">Activer</a></p>'
    text = "Ouvrez ce lien :\nhttp://127.0.0.1:8080/compte/nouveau-mot-de-passe/tok_en.1\n\nHabitat"
    assert without_links(text) == "Ouvrez ce lien :\n[lien retiré après envoi]\n\nHabitat"


# --- the IBAN in the database ----------------------------------------------------------------------------------

def test_the_iban_is_encrypted_in_the_database_and_read_back_by_the_orm(app, client_for, demo):
    client = client_for("retard@example.org")
    assert subscribe(client).status_code == 302
    [(raw,)] = raw_rows(app, "SELECT iban FROM direct_debit_mandate WHERE household_id = :h", h=demo["retard"])
    assert not shows_iban(raw, COMPACT_IBAN) and raw.startswith("gAAAAA")  # a Fernet token
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["retard"]))
        assert mandate.iban == COMPACT_IBAN and mandate.masked_iban == "FR76 **** **** 879"
    for (value,) in raw_rows(app, "SELECT iban FROM direct_debit_mandate"):  # the demo's mandates too
        assert value.startswith("gAAAAA") and not value[:4].startswith("FR")
    page = client.get("/paiement/").get_data(as_text=True)
    assert "FR76 **** **** 879" in page and COMPACT_IBAN not in page


def test_the_migration_encrypts_existing_ibans_and_removes_links_from_sent_mail(app, demo):
    """Down to the revision before: clear IBANs again; mail rows written then; up: tokens, and no link once sent."""
    body = 'Ouvrez https://portail.example.org/compte/activer/SECRET-TOKEN.1 <a href="https://x.example/r?a=1">ici</a>'
    with app.app_context():
        before = dict(db.session.execute(sa.select(DirectDebitMandate.id, DirectDebitMandate.iban)).all())
        db.session.remove()
        downgrade(revision="bc873aba3028")
        with db.engine.begin() as connection:
            clear = dict(connection.execute(sa.text("SELECT id, iban FROM direct_debit_mandate")).all())
            for sent_at, attempts in (("2026-11-20 06:30:00", 1), (None, 1), (None, 8)):  # sent, waiting, given up
                connection.execute(sa.text(
                    "INSERT INTO outgoing_mail (recipient, subject, text_body, html_body, sent_at, attempts, "
                    "created_at) VALUES ('a@example.org', 'Sujet', :body, :body, :sent_at, :attempts, :now)"),
                    {"body": body, "sent_at": sent_at, "attempts": attempts, "now": "2026-11-20 06:30:00"})
        assert clear == before and len(clear) >= 2  # the downgrade decrypted them
        upgrade()
        db.session.remove()
        after = dict(db.session.execute(sa.select(DirectDebitMandate.id, DirectDebitMandate.iban)).all())
    assert after == before
    for _, raw in raw_rows(app, "SELECT id, iban FROM direct_debit_mandate"):
        assert raw.startswith("gAAAAA") and not any(shows_iban(raw, iban) for iban in before.values())
    rows = raw_rows(app, "SELECT text_body, html_body, sent_at FROM outgoing_mail ORDER BY id")
    sent, waiting, given_up = rows
    assert sent.text_body == sent.html_body == without_links(body)  # same rule in SQL and in Python
    assert "SECRET-TOKEN" not in sent.text_body and waiting.text_body == body
    assert given_up.text_body == given_up.html_body == without_links(body)


# --- the subscription draft in the session cookie ---------------------------------------------------------------

def session_of(app, client) -> dict:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_the_draft_in_the_session_cookie_does_not_show_the_iban(app, client_for, demo):
    client = client_for("retard@example.org")
    review = subscribe_step1(client)
    assert review.status_code == 200 and "FR76 **** **** 879" in review.get_data(as_text=True)
    data = session_of(app, client)
    assert "sdd_draft" in data
    assert not shows_iban(json.dumps(data, default=str), COMPACT_IBAN)
    with app.app_context():
        assert crypto.decrypt_json(data["sdd_draft"])["iban"] == COMPACT_IBAN
    response = client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})
    assert response.status_code == 302
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["retard"]))
        assert mandate.iban == COMPACT_IBAN
    assert "sdd_draft" not in session_of(app, client)


def test_a_draft_that_is_not_encrypted_is_refused(app, client_for, demo):
    """A clear draft (an old cookie, or one written by hand) is treated as expired, never turned into a mandate."""
    client = client_for("retard@example.org")
    assert subscribe_step1(client).status_code == 200
    draft = session_of(app, client)["sdd_draft"]
    if not isinstance(draft, dict):
        with app.app_context():
            draft = crypto.decrypt_json(draft)
    assert draft["iban"] == COMPACT_IBAN
    with client.session_transaction() as session:
        session["sdd_draft"] = draft
    response = client.post("/paiement/prelevement/valider", data={"csrf_token": csrf_token(client, "/paiement/")})
    assert response.status_code == 302 and response.location.endswith("/paiement/prelevement")
    with app.app_context():
        assert db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["retard"])) is None


# --- key rotation -----------------------------------------------------------------------------------------------

def test_rotation_re_encrypts_every_value_with_the_first_key(app, demo):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    saved = app.config["DATA_ENCRYPTION_KEYS"]
    runner = app.test_cli_runner()

    def ibans():
        with app.app_context():
            db.session.remove()
            return dict(db.session.execute(sa.select(DirectDebitMandate.id, DirectDebitMandate.iban)).all())

    try:
        clear = ibans()  # written by the demo under the development key
        count = len(clear)
        assert count >= 2
        app.config["DATA_ENCRYPTION_KEYS"] = f"{key_a},{saved}"
        result = runner.invoke(args=["rotate-encryption-key", "--batch-size", "1"])
        assert result.exit_code == 0, result.output
        assert f"direct_debit_mandate.iban: {count} of {count} values" in result.output
        app.config["DATA_ENCRYPTION_KEYS"] = key_a  # encrypted with key A
        assert ibans() == clear
        app.config["DATA_ENCRYPTION_KEYS"] = f"{key_b},{key_a}"  # key B added in front
        tokens = dict(raw_rows(app, "SELECT id, iban FROM direct_debit_mandate"))
        result = runner.invoke(args=["rotate-encryption-key", "--batch-size", "1"])
        assert result.exit_code == 0 and f"{count} of {count} values" in result.output
        assert all(tokens[i] != token for i, token in raw_rows(app, "SELECT id, iban FROM direct_debit_mandate"))
        again = runner.invoke(args=["rotate-encryption-key"])  # idempotent: nothing left to do
        assert again.exit_code == 0 and f"0 of {count} values" in again.output
        app.config["DATA_ENCRYPTION_KEYS"] = key_b  # key A removed: everything still reads
        assert ibans() == clear
        app.config["DATA_ENCRYPTION_KEYS"] = key_a  # and key A alone no longer opens anything
        with pytest.raises(crypto.DecryptionError):
            ibans()
        missing = runner.invoke(args=["rotate-encryption-key"])
        assert missing.exit_code != 0 and "put back the key" in missing.output
    finally:
        rotate_back(app, saved, key_b, key_a)


# --- files: encrypted on disk -------------------------------------------------------------------------------------

def stored_files(app) -> list:
    return [path for path in Path(app.config["FILES_DIR"]).rglob("*") if path.is_file()]


def test_every_stored_file_is_encrypted_and_downloads_give_it_back(app, client_for, demo):
    """The RIB, the mandate PDF and the pain.008 file carry the full IBAN: on disk (and in a backup of it) every file
    is a Fernet token; the tenant and staff still download the original."""
    rib = pdf_bytes()
    tenant = client_for("retard@example.org")
    assert subscribe_step1(tenant, rib=(io.BytesIO(rib), "rib.pdf")).status_code == 200
    assert tenant.post("/paiement/prelevement/valider",
                       data={"csrf_token": csrf_token(tenant, "/paiement/")}).status_code == 302
    cycle = Cycle(app, demo)
    cycle.prenotify()
    batch = cycle.build()
    with app.app_context():
        mandate = db.session.scalar(sa.select(DirectDebitMandate).where(
            DirectDebitMandate.household_id == demo["retard"]))
        [mandate_pdf] = db.session.scalars(sa.select(Document.id).where(
            Document.mandate_id == mandate.id, Document.kind == DocumentKind.SEPA_MANDATE)).all()
        mandate_id, debtor_iban = mandate.id, db.session.get(DirectDebitMandate, cycle.mandate_id).iban
    assert tenant.get(f"/documents/{mandate_pdf}").data.startswith(b"%PDF")
    staff = client_for("gestionnaire@example.org")
    assert staff.get(f"/agence/mandats/{mandate_id}/rib").data == rib
    xml = staff.get(f"/agence/mandats/lot/{batch.id}/fichier").data
    assert debtor_iban.encode() in xml  # the bank's file, as downloaded, names the debtor's account
    files = stored_files(app)
    assert len(files) >= 3
    for path in files:
        raw = path.read_bytes()
        assert raw.startswith(b"gAAAAA"), path  # a Fernet token, under the data key
        assert not shows_iban(raw.decode("ascii"), debtor_iban) and not shows_iban(raw.decode("ascii"), COMPACT_IBAN)
        with app.app_context():
            assert crypto.decrypt_bytes(raw)  # opens with the key (PDFs, images and XML of every test so far)


def test_rotation_encrypts_files_in_clear_and_re_encrypts_the_others(app, client_for, demo):
    tenant = client_for("retard@example.org")
    assert subscribe(tenant).status_code == 302
    encrypted = stored_files(app)  # the RIB and the mandate
    count = len(encrypted) + 1
    legacy = encrypted[0].with_name("ancien-fichier.pdf")
    legacy.write_bytes(pdf_bytes())  # written before files were encrypted: still read, encrypted by the rotation
    with app.app_context():
        contents = [filestore.load(path) for path in encrypted]
        assert filestore.load(legacy) == pdf_bytes()
    saved, key = app.config["DATA_ENCRYPTION_KEYS"], Fernet.generate_key().decode()
    try:
        app.config["DATA_ENCRYPTION_KEYS"] = f"{key},{saved}"
        result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
        assert result.exit_code == 0, result.output
        assert f"FILES_DIR: {count - 1} of {count} files encrypted again with the first key, 1 encrypted that were " \
            "in clear." in result.output
        app.config["DATA_ENCRYPTION_KEYS"] = key  # the old key removed: both files still read
        with app.app_context():
            assert [filestore.load(path) for path in encrypted] == contents
            assert filestore.load(legacy) == pdf_bytes()
        assert legacy.read_bytes().startswith(b"gAAAAA")
        again = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
        assert f"FILES_DIR: 0 of {count} files encrypted again with the first key, 0 encrypted" in again.output
        app.config["DATA_ENCRYPTION_KEYS"] = saved  # a key that opens nothing: the command says what to do
        failed = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
        assert failed.exit_code != 0 and "put back the key" in failed.output
    finally:
        rotate_back(app, saved, key)


def rotate_back(app, saved: str, *keys: str) -> None:
    """Everything under the suite's key again, for the tests that follow (they share the database and files)."""
    app.config["DATA_ENCRYPTION_KEYS"] = ",".join([saved, *keys])
    result = app.test_cli_runner().invoke(args=["rotate-encryption-key"])
    app.config["DATA_ENCRYPTION_KEYS"] = saved
    with app.app_context():
        db.session.remove()
    assert result.exit_code == 0, result.output


# --- configuration ----------------------------------------------------------------------------------------------

@pytest.fixture
def production(production_env):  # noqa: F811
    production_env.setenv("DATA_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    return production_env


def test_production_starts_with_its_own_keys(production):
    production.setenv("DATA_ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()}, {Fernet.generate_key().decode()}")
    assert load_config().ENV_NAME == "production"


@pytest.mark.parametrize("value, fragment", [
    (None, "DATA_ENCRYPTION_KEYS is not set"),
    ("  ", "DATA_ENCRYPTION_KEYS is not set"),
    (DEV_DATA_ENCRYPTION_KEY, "DATA_ENCRYPTION_KEYS holds the development key"),
    (f"{Fernet.generate_key().decode()},{DEV_DATA_ENCRYPTION_KEY}", "DATA_ENCRYPTION_KEYS holds the development key"),
    ("not-a-key", "DATA_ENCRYPTION_KEYS key 1 is not a Fernet key"),
], ids=["missing", "blank", "development", "development-after-another", "malformed"])
def test_production_refuses_a_missing_or_development_encryption_key(production, value, fragment):
    if value is None:
        production.delenv("DATA_ENCRYPTION_KEYS")
    else:
        production.setenv("DATA_ENCRYPTION_KEYS", value)
    with pytest.raises(ConfigError, match=fragment):
        load_config()


def test_the_development_key_is_derived_from_a_marked_public_value():
    assert b"not-a-secret" in DEV_DATA_ENCRYPTION_SEED
    Fernet(DEV_DATA_ENCRYPTION_KEY)  # a valid key, so development and tests run without setup
