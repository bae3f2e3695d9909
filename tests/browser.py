"""Real Chromium (Debian's package, driven by Playwright) against the app served on loopback."""

from __future__ import annotations

import contextlib
import shutil
import threading

import pytest
from werkzeug.serving import make_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERIOUS = {"serious", "critical"}


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed (make test installs Debian's chromium when run as root)")
    return path


class LiveServer:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} - {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in SERIOUS]


@contextlib.contextmanager
def serve_demo(tmp, households: int):
    """A fresh app on SQLite with a demo landlord, served on loopback, and Chromium: yields (app, server, browser)."""
    from playwright.sync_api import sync_playwright

    from app.services.demo import seed_demo
    from tests.conftest import make_app, wipe

    application = make_app(f"sqlite:///{tmp / 'browser.db'}", tmp)
    with application.app_context():
        seed_demo(households, echo=lambda *_: None)
    with LiveServer(application) as server, sync_playwright() as playwright:
        application.config["PUBLIC_BASE_URL"] = server.url
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield application, server, browser
        finally:
            browser.close()
    wipe(application)


def staff_page(browser, server, email: str = "gestionnaire@example.org"):
    """A page signed in as a demo staff member, on their first screen (the work queues)."""
    from tests.conftest import PASSWORD

    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(f"{server.url}/login/")
    page.get_by_label("Identifiant (adresse e-mail)").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/agence/")
    return page
