"""`portail load-demo` (run by `make run`): a référent to try the console, a second school to
show its scoping, and still fresh working codes at every run."""

import io
import re

import pytest
from django.core.management import call_command

from portail.accounts.models import User
from portail.accounts.services import usable_activation_token
from portail.console.views import SESSION_VERIFIED
from portail.directory.models import structures_administered_by

from .conftest import enrol, text

pytestmark = pytest.mark.django_db
DEMO_LINE = re.compile(r"identifiant (\S+)\s+code d'activation (\S+)")


def load_demo():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    printed = out.getvalue()
    return printed, dict(DEMO_LINE.findall(printed))


def test_demo_prints_a_referent_who_logs_in_and_sees_only_his_school(client):
    printed, codes = load_demo()
    assert "hugo.bernard" in codes and "elodie.dupre" in codes
    password = re.search(r"identifiant referent\.demo, mot de passe « ([^»]+) »", printed).group(1)
    assert "application d'authentification" in printed and "/console/" in printed

    referent = User.objects.get(identifier="referent.demo")
    assert [s.uai for s in structures_administered_by(referent)] == ["0751234A"]
    response = client.post("/auth/login", {"identifier": "referent.demo", "password": password})
    assert response.status_code == 302
    assert client.get("/console/")["Location"] == "/console/securite/enrolement"

    enrol(referent)
    session = client.session
    session[SESSION_VERIFIED] = referent.pk
    session.save()
    page = text(client.get("/console/"))
    assert "elodie.dupre" in page and "hugo.bernard" not in page
    hugo = User.objects.get(identifier="hugo.bernard")
    assert client.get(f"/console/comptes/{hugo.pk}/").status_code == 404


def test_demo_is_idempotent_and_prints_fresh_codes_that_work(db):
    _, first = load_demo()
    count = User.objects.count()
    printed, second = load_demo()
    assert User.objects.count() == count
    assert set(second) == set(first)
    for identifier, code in second.items():
        user = User.objects.get(identifier=identifier)
        assert usable_activation_token(user, code) is not None
        assert usable_activation_token(user, first[identifier]) is None  # the old code died
    assert printed.count("referent.demo") == 1
