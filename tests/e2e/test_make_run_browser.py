"""What `make run` gives a newcomer, tried in the browser: the demo school's printed identifiers and
codes work, and a lost password can be recovered through the dev mailbox.

The steps of `make run` (migrate, load-demo, runserver with PORTAIL_DEBUG=1) run here as
subprocesses on a fresh SQLite file, with nothing else configured.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portail.typography import either
from tests.e2e.conftest import _new_page
from tests.e2e.helpers import NEW_PASSWORD, log_in, reset_password

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEMO_LINE = re.compile(r"identifiant (\S+)\s+code d'activation (\S+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def make_run(tmp_path_factory):
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAIL_", "DJANGO_"))
        and k not in {"DATABASE_URL", "EMAIL_URL", "REDIS_URL"}
    }
    # As `make run`: PORTAIL_DEBUG=1 and nothing else; its own var/ and the port of this test.
    env.update(
        PORTAIL_DEBUG="1",
        PORTAIL_VAR_DIR=str(tmp_path_factory.mktemp("var")),
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",
    )

    def portail(*args):
        return subprocess.run(
            [sys.executable, "-m", "portail", *args],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout

    portail("migrate", "--noinput")
    printed = portail("load-demo")
    accounts = dict(DEMO_LINE.findall(printed))
    assert accounts, printed
    log = tmp_path_factory.mktemp("log") / "runserver.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "portail", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            yield {"url": f"http://127.0.0.1:{port}", "accounts": accounts, "printed": printed}
        finally:
            server.terminate()
            server.wait(timeout=20)


@pytest.fixture
def demo_page(browser, a11y, make_run):
    context, page = _new_page(browser, a11y, make_run["url"])
    yield page
    context.close()


def test_demo_accounts_are_printed_with_their_codes_and_an_active_one(make_run):
    assert "elodie.dupre" in make_run["accounts"]
    assert all(re.fullmatch(r"[a-z2-9]{8}", code) for code in make_run["accounts"].values())
    assert "Compte déjà activé : identifiant parent.test" in make_run["printed"]
    assert "/dev/mailbox/" in make_run["printed"]


def test_newcomer_activates_a_demo_account_then_recovers_its_password_by_the_dev_mailbox(
    demo_page, a11y, make_run
):
    page = demo_page
    code = make_run["accounts"]["elodie.dupre"]
    page.goto("/auth/login")
    a11y(page)
    log_in(page, "elodie.dupre", code)
    expect(page.get_by_role("heading", level=1, name="Première connexion")).to_be_visible()
    a11y(page)
    page.get_by_label("Nouveau mot de passe", exact=True).fill("ma première phrase secrète")
    page.get_by_label("Confirmation du nouveau mot de passe").fill("ma première phrase secrète")
    page.get_by_label("Adresse de messagerie").fill("elodie@example.org")
    page.get_by_label(either("J'accepte la charte d'utilisation de l'ENT")).check()
    page.get_by_role("button", name="Activer mon compte").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Élodie Dupré")
    a11y(page)
    page.get_by_role("button", name="Se déconnecter").click()
    a11y(page)

    page.get_by_role("link", name="Besoin d'aide ?").click()
    a11y(page)
    page.get_by_role("link", name="Vous avez perdu votre mot de passe ?").click()
    a11y(page)
    page.get_by_label("Identifiant").fill("elodie.dupre")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status")).to_contain_text("courriers indésirables")
    a11y(page)

    page.get_by_role("link", name="Boîte aux lettres de développement").click()
    a11y(page)
    page.get_by_role("link", name="ENT : réinitialisation de votre mot de passe").first.click()
    a11y(page)
    page.get_by_role("link", name=re.compile(r"auth.reset.")).click()
    expect(
        page.get_by_role("heading", level=1, name="Réinitialisation du mot de passe")
    ).to_be_visible()
    a11y(page)
    reset_password(page, "elodie.dupre", NEW_PASSWORD)
    log_in(page, "elodie.dupre", NEW_PASSWORD)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
