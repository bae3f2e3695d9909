"""The bank's answers for the integration tests: the sample files of tests/data/bank (see its README) with their
references replaced by those of the debits a test created, so the real files' shape goes through the import."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

SAMPLES = Path(__file__).parent / "data" / "bank"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def pain002_reject(answer_id: str, message_id: str, end_to_end_id: str, amount: Decimal, created: datetime,
                   creditor_id: str = "FR72ZZZ123456") -> bytes:
    """A status report rejecting our debit (AM04); its two other lines are an unknown debit and an accepted one."""
    xml = (SAMPLES / "pain.002.001.03-rejects.xml").read_text()
    for old, new in (("P002-20261203-000417", answer_id), ("EL20261128063000A1B2C3", message_id),
                     ("EL2026123F9A0C41D2B7", end_to_end_id), ("412.35", f"{amount:.2f}"),
                     ("2026-12-03T07:12:45", f"{created:%Y-%m-%dT%H:%M:%S}"), ("FR72ZZZ123456", creditor_id)):
        xml = xml.replace(old, new)
    return xml.encode()


def camt054_return(answer_id: str, message_id: str, end_to_end_id: str, amount: Decimal, booked: date) -> bytes:
    """A notification booking the return of our debit (MD06, a refund asked by the tenant) and two other entries."""
    xml = (SAMPLES / "camt.054.001.08-returns.xml").read_text()
    for old, new in (("C054-20261210-000318", answer_id), ("EL20261028063000B7C8D9", message_id),
                     ("EL202611A7C3E9015B2D", end_to_end_id), ("455.00", f"{amount:.2f}"),
                     ("2026-12-10", booked.isoformat()), ("2026-12-09", booked.isoformat())):
        xml = xml.replace(old, new)
    return xml.encode()


def pain002_file_rejected(answer_id: str, message_id: str, created: datetime) -> bytes:
    """A status report refusing a whole file (FF01, a format error)."""
    xml = (SAMPLES / "pain.002.001.10-rejected-file.xml").read_text()
    for old, new in (("P002-20261128-000021", answer_id), ("EL20261128064500D4E5F6", message_id),
                     ("2026-11-28T06:41:12+01:00", f"{created:%Y-%m-%dT%H:%M:%S}+00:00")):
        xml = xml.replace(old, new)
    return xml.encode()
