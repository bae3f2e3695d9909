"""The README's screenshots, taken in Chromium from a demo landlord (the same as `make run`'s, 200 households):

    .venv/bin/python scripts/screenshots.py     (writes docs/*.png)
"""

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.demo import client_number  # noqa: E402
from tests.browser import serve_demo, staff_page  # noqa: E402


def main() -> None:
    with serve_demo(Path(tempfile.mkdtemp(prefix="espace-shots-")), 200) as (_, server, browser):
        page = staff_page(browser, server, "agence@example.org")
        page.set_viewport_size({"width": 1280, "height": 640})
        page.screenshot(path=str(ROOT / "docs/staff-queues.png"))
        box = page.get_by_role("searchbox")
        box.fill("martin")
        box.press("Enter")
        page.wait_for_load_state("load")
        page.screenshot(path=str(ROOT / "docs/staff-search.png"))
        box = page.get_by_role("searchbox").first
        box.fill(client_number(1))  # Karim Benali, in arrears, who promised to pay part of it
        box.press("Enter")
        page.wait_for_url("**/agence/foyers/**")
        page.set_viewport_size({"width": 1280, "height": 1100})
        page.screenshot(path=str(ROOT / "docs/staff-household.png"))
        page.close()
    print("docs/staff-queues.png, docs/staff-search.png, docs/staff-household.png")


if __name__ == "__main__":
    main()
