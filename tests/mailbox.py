"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and helpers to read links in mail."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Mailbox:
    messages: list = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list:
        return [message for recipients, message in self.messages if address in recipients]

    def last_to(self, address: str):
        found = self.to(address)
        assert found, f"no mail to {address} (got {[r for r, _ in self.messages]})"
        return found[-1]


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message, base_url: str) -> str:
    """The first link of the plain-text part that points at the portal, as a path for the test client."""
    match = re.search(re.escape(base_url) + r"(/\S+)", text_of(message))
    assert match, text_of(message)
    return match.group(1)


class SMTPServer:
    def __init__(self):
        self.mailbox = Mailbox()
        self.port = _free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
