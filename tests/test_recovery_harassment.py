"""Recovery that cannot be used to harass (issue 7 §1, §4): one mail per cadence, the owner's known
device never held back, links that die when used or opened, not when someone asks for another."""

from urllib.parse import urlsplit

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from portail.accounts.models import Token, User
from portail.recovery import services
from portail.security.devices import remember_device
from tests.helpers import STRONG_PASSWORD, login, text

LOST_PASSWORD = "/auth/lost-password"
RESET = "/auth/reset/"
LINK_PREFIX = "https://ent.example.test/auth/reset/"
EMAIL = "jean.dupont@example.org"
NEW_PASSWORD = "lampadaire vert mirabelle trottinette"
pytestmark = pytest.mark.django_db(transaction=True)


def classmate():
    """Somebody else, from another browser and another address."""
    return Client(REMOTE_ADDR="10.20.30.40")


def known_device(user, client=None):
    """A browser where `user` logged in before: its device state set by remember_device."""
    client = client or Client()
    request = RequestFactory().get("/auth/login")
    request.COOKIES.update({k: m.value for k, m in client.cookies.items()})
    request.user = user
    request.client_ip = "127.0.0.1"
    response = HttpResponse()
    remember_device(request, response, user)
    for name, morsel in response.cookies.items():
        client.cookies[name] = morsel.value
    return client


def ask_reset(client, identifier="jean.dupont"):
    return client.post(LOST_PASSWORD, {"identifier": identifier}, follow=True)


def links(smtp):
    found = []
    for mail in smtp.sent_to(EMAIL):
        found += mail.links(prefix=LINK_PREFIX)
    return found


def open_link(client, link):
    return client.get(urlsplit(link).path)


def submit_reset(client, password=NEW_PASSWORD):
    return client.post(
        RESET,
        {"identifier": "jean.dupont", "new_password": password, "new_password_confirm": password},
    )


def complete_reset(client, link, password=NEW_PASSWORD):
    assert open_link(client, link)["Location"] == RESET
    done = submit_reset(client, password)
    assert done.status_code == 302 and done["Location"] == "/auth/login", text(done)


# --- One mail per cadence; the owner's known device is never held back ------------------------


def test_five_requests_by_a_classmate_send_one_mail_and_do_not_block_the_owner(
    smtp, active_user, settings
):
    minutes = settings.PORTAIL_RECOVERY_MAIL_MINUTES
    other = classmate()
    answers = [text(ask_reset(other)) for _ in range(5)]
    assert services.RESET_SENT_MESSAGE in answers[0]
    for answer in answers[1:]:
        assert "Un courriel vous a déjà été envoyé" in answer and 'role="status"' in answer
        assert f"{minutes} minutes" in answer and "courriers indésirables" in answer
    assert len(smtp.sent_to(EMAIL)) == 1

    # The owner, from her own phone (a known device), gets her mail at once, not a refusal.
    owner = known_device(active_user)
    assert services.RESET_SENT_MESSAGE in text(ask_reset(owner))
    assert len(smtp.sent_to(EMAIL)) == 2
    complete_reset(owner, links(smtp)[-1])
    assert User.objects.get(pk=active_user.pk).check_password(NEW_PASSWORD)


def test_the_owner_on_an_unknown_device_is_told_a_mail_just_left(smtp, active_user):
    ask_reset(classmate())
    page = text(ask_reset(Client()))
    assert services.MailJustSent().message in page
    assert "Utilisateur inconnu" not in page
    assert len(smtp.sent_to(EMAIL)) == 1
    # The mail that did leave serves the owner.
    complete_reset(Client(), links(smtp)[0])


def test_a_known_device_of_another_account_is_not_the_owners(smtp, active_user):
    intruder = User.objects.create_user(
        "marie.curie", STRONG_PASSWORD, first_name="Marie", last_name="Curie", state="active"
    )
    other = known_device(intruder, classmate())
    ask_reset(other)
    ask_reset(other)
    assert len(smtp.sent_to(EMAIL)) == 1


def test_in_the_neutral_mode_a_request_inside_the_cadence_reads_the_neutral_answer(
    active_user, settings
):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = True
    other = classmate()
    first, second = text(ask_reset(other)), text(ask_reset(other))
    assert first == second and services.NEUTRAL_MESSAGE in second
    # Queued only, never delivered inside the request (the neutral mode's equal timing).
    from portail.mail.models import OutgoingMail

    assert list(OutgoingMail.objects.values_list("to", "status")) == [(EMAIL, "pending")]


# --- Links die when a newer one is used, not when it is asked for --------------------------------


def test_an_older_link_still_works_after_a_newer_one_was_asked_for(smtp, active_user):
    owner = known_device(active_user)
    ask_reset(owner)
    ask_reset(classmate())  # someone else asks again: inside the cadence, nothing leaves
    ask_reset(owner)  # the owner asks again from her device: a second link
    first, second = links(smtp)
    assert first != second
    complete_reset(Client(), first)
    assert User.objects.get(pk=active_user.pk).check_password(NEW_PASSWORD)


def test_using_a_newer_link_kills_the_older_one(smtp, active_user):
    owner = known_device(active_user)
    ask_reset(owner)
    ask_reset(owner)
    first, second = links(smtp)
    complete_reset(Client(), second)
    dead = open_link(Client(), first)
    assert services.TokenInvalid.message in text(dead)
    assert not Token.objects.filter(user=active_user, used_at__isnull=True).exists()


def test_a_link_dies_when_the_account_address_changes(smtp, active_user):
    ask_reset(Client())
    link = links(smtp)[0]
    owner = Client()
    assert login(owner, "jean.dupont", STRONG_PASSWORD).status_code == 302
    changed = owner.post(
        "/compte/coordonnees",
        {
            "contact-email": "jean.nouveau@example.org",
            "contact-phone": "",
            "contact-current_password": STRONG_PASSWORD,
        },
    )
    assert changed.status_code == 302
    assert User.objects.get(pk=active_user.pk).email == "jean.nouveau@example.org"
    assert services.TokenInvalid.message in text(open_link(Client(), link))


def test_a_link_opened_and_then_the_address_changed_cannot_complete(smtp, active_user):
    ask_reset(Client())
    reader = Client()
    assert open_link(reader, links(smtp)[0])["Location"] == RESET
    from portail.profile.services import end_reset_links

    end_reset_links(active_user)  # what an address change does
    assert services.TokenInvalid.message in text(submit_reset(reader))
    assert User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)


# --- Opening the link spends it ---------------------------------------------------------------


def test_opening_the_link_spends_it_for_anybody_else(smtp, active_user):
    ask_reset(Client())
    link = links(smtp)[0]
    owner = Client()
    assert open_link(owner, link)["Location"] == RESET

    # Someone who read the URL (an access log, a forwarded mail) finds a dead link.
    dead = open_link(Client(), link)
    assert dead.status_code == 200 and dead["Referrer-Policy"] == "no-referrer"
    assert services.TokenInvalid.message in text(dead)

    # The owner's own browser opening it again finds its form, and completes.
    assert open_link(owner, link)["Location"] == RESET
    assert submit_reset(owner).status_code == 302
    assert User.objects.get(pk=active_user.pk).check_password(NEW_PASSWORD)


def test_a_retry_after_the_reset_is_told_the_password_was_already_changed(smtp, active_user):
    ask_reset(Client())
    link = links(smtp)[0]
    owner = Client()
    complete_reset(owner, link)
    # The form sent again (the answer was lost), or the link clicked again: a clear message.
    again = submit_reset(owner)
    assert again.status_code == 200
    assert services.ResetAlreadyDone.message in text(again)
    assert services.ResetAlreadyDone.message in text(open_link(owner, link))
    assert services.TokenInvalid.message in text(open_link(Client(), link))


def test_the_cadence_survives_a_cache_that_lost_its_keys(smtp, active_user):
    from django.core.cache import cache

    other = classmate()
    ask_reset(other)
    cache.clear()  # Redis restarted empty, or evicted the slot
    assert "Un courriel vous a déjà été envoyé" in text(ask_reset(other))
    assert len(smtp.sent_to(EMAIL)) == 1


def test_a_referent_sends_a_link_from_the_console_whatever_the_cadence(smtp, active_user):
    ask_reset(classmate())  # the cadence's slot is taken
    referent = User.objects.create_user(
        "marc.referent", STRONG_PASSWORD, first_name="Marc", last_name="Référent", state="active"
    )
    request = RequestFactory().post("/console/")
    request.user, request.client_ip, request.session = referent, "127.0.0.1", {}
    services.request_password_reset(request, "jean.dupont", by_referent=True)
    assert len(smtp.sent_to(EMAIL)) == 2
