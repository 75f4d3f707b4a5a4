"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

Every page a test visits is checked by axe-core (`a11y(page)`); a test that navigates to a page it
never checked fails at teardown, so "axe runs on every page" is enforced, not hoped for.
Elements are found by role and visible label only, as a user (or a screen reader) finds them.
"""

import os
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django's ORM (used by fixtures and
# assertions in the same thread) would otherwise refuse to run "from an async context".
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# The browser and axe-core themselves are session-wide, shared with the console and SSO browser
# tests (tests/browser.py): Playwright's sync API allows one instance per thread.
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401

# WCAG 2.0, 2.1 and 2.2 levels A and AA (RGAA 4.1, the French public-sector reference, maps onto
# WCAG 2.1 AA), plus axe's best practices. Running by tag also turns on the rules axe leaves off by
# default, such as target-size (WCAG 2.2 SC 2.5.8: 24 px touch targets).
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


def _path(url):
    parts = urlsplit(url)
    return parts.path if parts.scheme in {"http", "https"} else None


class A11y:
    """Runs axe-core on the page; remembers which paths were checked and which were visited."""

    def __init__(self, axe):
        self.axe = axe
        self.visited = []
        self.checked = set()

    def __call__(self, page, context=None):
        # A page whose header is visible may still be parsing its main part on a loaded machine
        # (axe then finds no <h1>): check the whole document.
        page.wait_for_load_state("load")
        results = self.axe.run(page, context=context, options=AXE_OPTIONS)
        self.checked.add(_path(page.url))
        if results.violations_count:
            pytest.fail(
                f"axe-core found {results.violations_count} violation(s) on {page.url}:\n"
                + results.generate_report(),
                pytrace=False,
            )
        return results

    def on_navigation(self, frame):
        if frame.parent_frame is None:
            path = _path(frame.url)
            if path and path not in self.visited:
                self.visited.append(path)

    def unchecked(self):
        return [p for p in self.visited if p not in self.checked]


def _new_page(browser, a11y, base_url, **context_args):
    context = browser.new_context(base_url=base_url, locale="fr-FR", **context_args)
    context.set_default_timeout(15_000)
    # Every tab of the context is tracked: the first one and those a test or a link opens.
    context.on("page", lambda tab: tab.on("framenavigated", a11y.on_navigation))
    page = context.new_page()
    return context, page


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def a11y(axe, request):
    checker = A11y(axe)
    yield checker
    missing = checker.unchecked()
    # A test that failed already stopped mid-way: its own failure is the one to read.
    if missing and not getattr(request.node, "call_failed", False):
        pytest.fail(f"pages visited without an axe-core check: {missing}", pytrace=False)


@pytest.fixture
def context_and_page(browser, live_server, a11y):
    context, page = _new_page(browser, a11y, live_server.url)
    yield context, page
    context.close()


@pytest.fixture
def page(context_and_page):
    return context_and_page[1]


@pytest.fixture
def context(context_and_page):
    return context_and_page[0]


@pytest.fixture
def mobile_page(browser, live_server, a11y):
    # An iPhone-12/13/14-sized phone: the pupils' usual screen.
    context, page = _new_page(
        browser,
        a11y,
        live_server.url,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    yield page
    context.close()
