import pytest
from django.core.management import CommandError, call_command

from portail.audit.models import Event
from portail.directory.models import Function

pytestmark = pytest.mark.django_db


def test_grant_function_makes_a_referent_then_the_console_asks_enrolment(
    client, active_user, school
):
    call_command("grant_function", "jean.dupont", uai=school.uai)
    assert Function.objects.filter(user=active_user, structure=school, role="referent").exists()
    assert Event.objects.filter(tag="console.function.granted", target=active_user).exists()
    client.force_login(active_user)
    assert client.get("/console/")["Location"] == "/console/securite/enrolement"


def test_grant_function_refuses_unknown_account_or_school(active_user):
    with pytest.raises(CommandError, match="Compte inconnu"):
        call_command("grant_function", "personne", regional=True)
    with pytest.raises(CommandError, match="Établissement inconnu"):
        call_command("grant_function", "jean.dupont", uai="0000000X")


def test_reset_second_factor_sends_back_to_enrolment(client, referent):
    from portail.console.models import TOTPDevice

    from .conftest import enrol

    enrol(referent)
    call_command("reset_second_factor", "anne.martin")
    assert not TOTPDevice.objects.filter(user=referent).exists()
    referent.refresh_from_db()  # its session stamp was rotated
    client.force_login(referent)
    assert client.get("/console/")["Location"] == "/console/securite/enrolement"
    assert Event.objects.filter(tag="console.totp.reset", target=referent).exists()
