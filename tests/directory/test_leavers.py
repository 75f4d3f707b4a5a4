"""Leavers: "sortant" after a full import, deactivated after the grace period, erased at 90 days."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from portail.accounts.models import Profile, State, Token, User
from portail.accounts.provisioning import create_account
from portail.directory.models import Relationship
from portail.directory.services import process_leavers
from tests.conftest import STRONG_PASSWORD

pytestmark = pytest.mark.django_db


def _leaver(identifier, days_ago, **fields):
    user = User.objects.create_user(
        identifier,
        STRONG_PASSWORD,
        first_name="A",
        last_name="B",
        profile=Profile.ELEVE,
        state=State.ACTIVE,
        **fields,
    )
    user.leaving_since = timezone.now() - timedelta(days=days_ago)
    user.save()
    return user


def test_leaver_keeps_access_during_grace_then_is_deactivated(client, settings):
    settings.PORTAIL_LEAVER_GRACE_DAYS = 30
    recent = _leaver("recent.leaver", 10)
    old = _leaver("old.leaver", 31)
    stamp = old.session_stamp
    result = process_leavers()
    assert (result.deactivated, result.erased) == (1, 0)
    recent.refresh_from_db()
    old.refresh_from_db()
    assert recent.is_active and recent.deactivated_at is None
    assert not old.is_active and old.deactivated_at is not None
    assert old.session_stamp != stamp  # every session ended
    # The real login view lets the recent leaver in, and not the deactivated one.
    ok = client.post("/auth/login", {"identifier": "recent.leaver", "password": STRONG_PASSWORD})
    assert ok.status_code == 302
    client.post("/auth/logout")
    client.post("/auth/login", {"identifier": "old.leaver", "password": STRONG_PASSWORD})
    assert not client.get("/").wsgi_request.user.is_authenticated


def test_deactivation_kills_activation_codes(settings):
    user, _code = create_account("Zoé", "Petit", Profile.ELEVE)
    user.leaving_since = timezone.now() - timedelta(days=40)
    user.save()
    process_leavers()
    assert not Token.objects.filter(user=user).exists()


def test_personal_data_is_erased_within_three_months():
    erased = _leaver("erased.leaver", 91)
    parent = User.objects.create_user("p.p", None, first_name="P", last_name="P", profile="parent")
    Relationship.objects.create(parent=parent, child=erased)
    kept = _leaver("kept.leaver", 60)
    result = process_leavers()
    assert result.erased == 1
    assert not User.objects.filter(pk=erased.pk).exists()
    assert not Relationship.objects.exists()
    assert User.objects.filter(pk=kept.pk).exists()


def test_process_leavers_command(capsys):
    _leaver("old.leaver", 45)
    call_command("process_leavers")
    out = capsys.readouterr().out
    assert "Comptes désactivés (sortants depuis 30 jours) : 1" in out


def _cas_app():
    from portail.sso.models import Application

    return Application.objects.create(
        name="Vie scolaire",
        short_label="VS",
        url="https://notes.example.test/",
        kind=Application.Kind.CAS,
        cas_service_patterns="https://notes.example.test/",
    )


def test_deactivation_revokes_single_sign_on_tickets():
    from portail.sso import services as sso
    from portail.sso.models import ProxyGrantingTicket, ServiceTicket

    app = _cas_app()
    old = _leaver("old.leaver", 31)
    recent = _leaver("recent.leaver", 10)
    for user in (old, recent):
        sso._issue(app, user, "https://notes.example.test/")
        ProxyGrantingTicket.objects.create(
            digest=f"pgt-{user.pk}",
            application=app,
            user=user,
            expires_at=timezone.now() + timedelta(hours=1),
        )
    assert process_leavers().deactivated == 1
    assert not ServiceTicket.objects.filter(user=old).exists()
    assert not ProxyGrantingTicket.objects.filter(user=old).exists()
    # The one still in his grace period keeps his tickets.
    assert ServiceTicket.objects.filter(user=recent).count() == 1
    assert ProxyGrantingTicket.objects.filter(user=recent).count() == 1


def test_cas_refuses_a_deactivated_leaver_whose_state_is_still_active(rf):
    from django.contrib.sessions.backends.db import SessionStore

    from portail.sso import services as sso
    from portail.sso.models import ProxyGrantingTicket

    app = _cas_app()
    user = _leaver("old.leaver", 31)
    process_leavers()
    user.refresh_from_db()
    assert user.state == State.ACTIVE and not user.is_active
    # Tickets made after the revocation (a race with a login in progress) are refused too.
    ticket = sso._issue(app, user, "https://notes.example.test/")
    with pytest.raises(sso.CasError, match="not recognized"):
        sso.validate_ticket(
            ticket, "https://notes.example.test/", accept_proxy_tickets=False, renew=False
        )
    ProxyGrantingTicket.objects.create(
        digest=sso._digest("PGT-x"),
        application=app,
        user=user,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    with pytest.raises(sso.CasError, match="not recognized"):
        sso.grant_proxy_ticket("PGT-x", "https://notes.example.test/")
    request = rf.get("/cas/login")
    request.user = user
    request.session = SessionStore()
    with pytest.raises(sso.AccountNotActive):
        sso.grant_service_ticket(request, "https://notes.example.test/", renew=False, app=app)


def test_a_wave_of_leavers_costs_a_bounded_number_of_queries(django_assert_max_num_queries):
    # September: thousands leave at once; the work per chunk must not grow with its size.
    for n in range(40):
        _leaver(f"eleve.sortant{n}", days_ago=40)
    with django_assert_max_num_queries(40):
        result = process_leavers()
    assert User.objects.filter(deactivated_at__isnull=False).count() == 40
    assert result is not None
