"""The one mail module.

`queue_mail()` renders a message (plain text and HTML, in the recipient's language) and stores it in the same
transaction as the use case. `deliver_pending()` sends what is queued: right after the response that queued it,
and from a scheduler job for retries. With MAIL_SERVER unset, each message is written as an `.eml` file under
MAIL_OUTBOX_DIR (the embedded default); with it set, through SMTP. Links are built from PUBLIC_BASE_URL, never
from the request's Host header.

Once a message is sent (or given up), its stored bodies lose every link: the table and its backups must not hold
working activation, reset or email-change links. A message waiting for a retry keeps them (its tokens expire).
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template, url_for
from flask_babel import force_locale

from app.extensions import db
from app.models import OutgoingMail, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Any absolute URL, in text or in an HTML attribute (the migration c1a0e5e0b001 keeps a frozen copy of this rule).
LINK_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
LINK_REMOVED = "[lien retiré après envoi]"


def without_links(body: str) -> str:
    """The body as it stays in the table once sent: every link replaced by a marker."""
    return LINK_RE.sub(LINK_REMOVED, body)


def _forget_links(mail: OutgoingMail) -> None:
    mail.text_body, mail.html_body = without_links(mail.text_body), without_links(mail.html_body)


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an email: the configured public base URL plus the route's path (works in jobs too)."""
    if has_request_context():
        path = url_for(endpoint, _external=False, **values)
    else:
        with current_app.test_request_context("/"):
            path = url_for(endpoint, _external=False, **values)
    return current_app.config["PUBLIC_BASE_URL"] + path


def queue_mail(recipient: str, template: str, locale: str = "fr", **context) -> OutgoingMail:
    """Render `mail/<template>.txt` and `.html` in `locale` and queue the message (not committed here)."""
    with force_locale(locale):
        context.setdefault("landlord", current_app.config["LANDLORD_NAME"])
        subject = render_template(f"mail/{template}.subject.txt", **context).strip()
        text = render_template(f"mail/{template}.txt", **context)
        html = render_template(f"mail/{template}.html", **context)
    mail = OutgoingMail(recipient=recipient, subject=subject, text_body=text, html_body=html)
    db.session.add(mail)
    if has_request_context():
        _deliver_after_response()
    return mail


def _deliver_after_response() -> None:
    from flask import after_this_request

    app = current_app._get_current_object()

    @after_this_request
    def hook(response):
        response.call_on_close(lambda: _deliver_in_context(app))
        return response


def _deliver_in_context(app) -> None:
    with app.app_context():
        try:
            deliver_pending()
        except Exception:  # the job retries; never break a response that is already sent
            log.exception("mail delivery after response failed")


def build_message(mail: OutgoingMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=current_app.config["MAIL_FROM"].rsplit("@", 1)[-1].strip(">"))
    message.set_content(mail.text_body)
    message.add_alternative(mail.html_body, subtype="html")
    return message


def _send(message: EmailMessage) -> None:
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        outbox = config["MAIL_OUTBOX_DIR"]
        outbox.mkdir(parents=True, exist_ok=True)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        (outbox / name).write_bytes(bytes(message))
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=15) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)


def deliver_pending(limit: int = 200) -> int:
    """Send queued messages, oldest first. Returns how many were sent. Failures are kept for a retry."""
    pending = db.session.scalars(
        sa.select(OutgoingMail).where(OutgoingMail.sent_at.is_(None), OutgoingMail.attempts < MAX_ATTEMPTS)
        .order_by(OutgoingMail.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    sent = 0
    for mail in pending:
        mail.attempts += 1
        try:
            _send(build_message(mail))
        except (OSError, smtplib.SMTPException) as exc:
            mail.last_error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("mail %s to %s not sent: %s", mail.id, mail.recipient, mail.last_error)
            if mail.attempts >= MAX_ATTEMPTS:  # given up: nothing will read the links again
                _forget_links(mail)
        else:
            mail.sent_at, mail.last_error = utcnow(), None
            _forget_links(mail)  # committed with sent_at, in one transaction
            sent += 1
        db.session.commit()
    return sent
