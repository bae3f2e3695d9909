"""secrets at rest: bank details encrypted, sent mail without links

Revision ID: c1a0e5e0b001
Revises: bc873aba3028
Create Date: 2026-11-25 22:10:00

The IBANs are encrypted with the app's first DATA_ENCRYPTION_KEYS key (the migration runs inside the app
context, through app.dbtypes.EncryptedString) and decrypted again on downgrade. The bodies of mail already sent
(or given up after the last attempt) lose their links (activation, reset, email-change tokens); a downgrade
cannot bring them back.
"""
import re

from alembic import op
import sqlalchemy as sa

import app.dbtypes


revision = 'c1a0e5e0b001'
down_revision = 'bc873aba3028'
branch_labels = None
depends_on = None

BATCH = 500
# A frozen copy of app.mail's rule (a migration must not change when the app's code does).
LINK_PATTERN = r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+"
PG_LINK_PATTERN = "[A-Za-z][A-Za-z0-9+.-]*://[^[:space:]\"'<>]+"
LINK_REMOVED = "[lien retiré après envoi]"
MAX_ATTEMPTS = 8  # app.mail's, when this was written


def _mandates(iban_type):
    return sa.table("direct_debit_mandate", sa.column("id", sa.Integer), sa.column("iban", iban_type))


def _copy_ibans(source_type, target_type):
    """Read every IBAN through `source_type` and write it back through `target_type`, in batches by id."""
    connection = op.get_bind()
    source, target = _mandates(source_type), _mandates(target_type)
    last_id = 0
    while True:
        rows = connection.execute(sa.select(source.c.id, source.c.iban).where(source.c.id > last_id)
                                  .order_by(source.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            connection.execute(target.update().where(target.c.id == row.id).values(iban=row.iban))
        last_id = rows[-1].id


def _remove_links_from_sent_mail():
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(
            "UPDATE outgoing_mail SET text_body = regexp_replace(text_body, :pattern, :marker, 'g'), "
            "html_body = regexp_replace(html_body, :pattern, :marker, 'g') "
            "WHERE (sent_at IS NOT NULL OR attempts >= :given_up) "
            "AND (text_body LIKE '%://%' OR html_body LIKE '%://%')"),
            {"pattern": PG_LINK_PATTERN, "marker": LINK_REMOVED, "given_up": MAX_ATTEMPTS})
        return
    mail = sa.table("outgoing_mail", sa.column("id", sa.Integer), sa.column("sent_at"),
                    sa.column("attempts", sa.Integer), sa.column("text_body", sa.Text), sa.column("html_body", sa.Text))
    link = re.compile(LINK_PATTERN)
    has_link = sa.or_(mail.c.text_body.like("%://%"), mail.c.html_body.like("%://%"))
    done = sa.or_(mail.c.sent_at.is_not(None), mail.c.attempts >= MAX_ATTEMPTS)
    last_id = 0
    while True:
        rows = connection.execute(sa.select(mail.c.id, mail.c.text_body, mail.c.html_body).where(
            mail.c.id > last_id, done, has_link).order_by(mail.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            connection.execute(mail.update().where(mail.c.id == row.id).values(
                text_body=link.sub(LINK_REMOVED, row.text_body), html_body=link.sub(LINK_REMOVED, row.html_body)))
        last_id = rows[-1].id


def upgrade():
    with op.batch_alter_table('direct_debit_mandate', schema=None) as batch_op:
        batch_op.alter_column('iban', existing_type=sa.String(length=34),
                              type_=app.dbtypes.EncryptedString(length=160), existing_nullable=False)
    _copy_ibans(sa.String(160), app.dbtypes.EncryptedString(160))
    _remove_links_from_sent_mail()


def downgrade():
    _copy_ibans(app.dbtypes.EncryptedString(160), sa.String(160))
    with op.batch_alter_table('direct_debit_mandate', schema=None) as batch_op:
        batch_op.alter_column('iban', existing_type=app.dbtypes.EncryptedString(length=160),
                              type_=sa.String(length=34), existing_nullable=False)
