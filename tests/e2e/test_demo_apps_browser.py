"""`make run` in Chromium, as a newcomer: log in with the printed demo account, click each tile,
land signed in to the application, come back by its link. Phone-sized, axe-core on every page."""

import re

import pytest
from playwright.sync_api import expect

from tests.demo_launcher import DEMO_PASSWORD, demo_running
from tests.e2e.conftest import _new_page
from tests.e2e.helpers import log_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    with demo_running(tmp_path_factory.mktemp("demo")) as running:
        yield running


def test_newcomer_clicks_the_tiles_and_is_signed_in(browser, a11y, demo):
    context, page = _new_page(browser, a11y, demo["portal"], viewport={"width": 375, "height": 800})
    try:
        page.goto("/auth/login")
        a11y(page)
        log_in(page, "parent.test", DEMO_PASSWORD)
        expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Parent Test")
        a11y(page)
        for tile, app_url in (("Cahier de textes", demo["cas"]), ("Classeur", demo["oidc"])):
            page.get_by_role("link", name=re.compile(f"^{tile}")).click()
            expect(page).to_have_url(app_url + "/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Parent Test")
            expect(page.get_by_role("cell", name="Parent Test").first).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            a11y(page)
            page.get_by_role("link", name="Retour au portail ENT").click()
            expect(page).to_have_url(demo["portal"] + "/")
    finally:
        context.close()
