"""The one Chromium (and axe-core) of the browser tests, for the whole session.

Playwright's sync API runs one event loop per thread: every browser test (tests/e2e, the console's,
the SSO's) must share this instance rather than start its own.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("PORTAIL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {message}", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # A shared 2-core CI box hashing Argon2 is slow at times: wait up to 15 s, never sleep.
    expect.set_options(timeout=15_000)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()
