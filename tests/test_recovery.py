"""« Besoin d'aide ? », lost password and the reset link, followed from a real SMTP server."""

import json
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from portail.accounts.models import State, Token, User
from portail.audit.models import Event
from portail.mail.models import OutgoingMail
from portail.recovery import services
from portail.security import tokens
from portail.typography import normalised
from tests.helpers import STRONG_PASSWORD, login, text

HELP = "/auth/help"
LOST_PASSWORD = "/auth/lost-password"
RESET = "/auth/reset/"
LINK_PREFIX = "https://ent.example.test/auth/reset/"
NEW_PASSWORD = "lampadaire vert mirabelle trottinette"
EMAIL = "jean.dupont@example.org"
UNKNOWN = "Utilisateur inconnu, veuillez vérifier la saisie de votre identifiant."


def ask_reset(client, identifier="jean.dupont"):
    return client.post(LOST_PASSWORD, {"identifier": identifier}, follow=True)


def reset_link_from_mail(smtp):
    mail = smtp.only(to=EMAIL)
    links = mail.links(prefix=LINK_PREFIX)
    assert len(links) == 1, mail.text
    return links[0]


def open_link(client, link):
    """Follow the emailed link as a browser would (path only: the test client is the host)."""
    return client.get(urlsplit(link).path)


def submit_reset(client, identifier="jean.dupont", password=NEW_PASSWORD, confirm=None):
    return client.post(
        RESET,
        {
            "identifier": identifier,
            "new_password": password,
            "new_password_confirm": password if confirm is None else confirm,
        },
    )


def reset_form_open(client):
    """The reset form is still in front of this client (its link was not spent by a refusal)."""
    page = text(client.get(RESET))
    return 'id="id_new_password"' in page and services.TokenInvalid.message not in page


def logged_in_client(identifier="jean.dupont", password=STRONG_PASSWORD):
    other = Client()
    response = login(other, identifier, password)
    assert response.status_code == 302 and response["Location"] == "/"
    assert other.get("/").status_code == 200
    return other


# --- The help page and the lost-password page -------------------------------------------------


@pytest.mark.django_db
def test_help_page_has_the_seed_wording_and_its_three_ways(client):
    page = text(client.get(HELP))
    assert "Besoin d'aide ?" in page
    assert (
        "Fournissez simplement les informations suivantes et nous vous aiderons à accéder à "
        "votre compte." in page
    )
    assert '<a href="/auth/lost-password">Vous avez perdu votre mot de passe ?</a>' in page
    assert '<a href="/auth/lost-identifier">Vous avez perdu votre identifiant ?</a>' in page
    assert "href=\"/auth/login\">Retour à l'écran d'accueil</a>" in page


@pytest.mark.django_db
def test_login_page_links_to_the_help_page(client):
    assert f'href="{HELP}"' in text(client.get("/auth/login"))


@pytest.mark.django_db
def test_lost_password_page_has_the_seed_wording(client):
    page = text(client.get(LOST_PASSWORD))
    assert (
        "Entrez votre identifiant de connexion pour recevoir les instructions pour changer "
        "votre mot de passe." in page
    )
    assert '<label for="id_identifier">Identifiant</label>' in page
    assert '<button type="submit" class="button">Envoyer</button>' in page
    assert "href=\"/auth/login\">Retour à l'écran d'accueil</a>" in page
    assert 'href="/auth/lost-identifier">Vous avez perdu votre identifiant ?</a>' in page


@pytest.mark.django_db
def test_unknown_identifier_gets_the_seed_message_and_nothing_is_sent(client, active_user):
    page = text(ask_reset(client, "jean.dupond"))
    # The error summary (role=alert, focused on load) links the message to the field to fix.
    assert 'class="error-summary" id="resume-erreurs" role="alert"' in page
    assert f'<a href="#id_identifier" data-error-link id="resume-erreurs-1">{UNKNOWN}</a>' in page
    assert not Token.objects.filter(purpose=Token.Purpose.RESET).exists()
    assert OutgoingMail.objects.count() == 0
    event = Event.objects.get(tag="account.password.reset_requested")
    assert event.subject == "jean.dupond" and event.data == {"outcome": "unknown"}


@pytest.mark.django_db
def test_pending_account_is_told_to_use_the_activation_code_or_the_referent(client, pending_pupil):
    user, _code = pending_pupil
    page = text(ask_reset(client, user.identifier))
    assert services.AccountNotActivated.message in page
    for expected in [
        "pas encore activé",
        "code d'activation",
        "référent ENT",
        "professeur principal",
    ]:
        assert expected in page, expected
    assert 'role="alert"' in page
    assert not Token.objects.filter(user=user).exclude(purpose=Token.Purpose.ACTIVATION).exists()
    assert OutgoingMail.objects.count() == 0


@pytest.mark.django_db
def test_blocked_account_is_told_to_contact_the_school_administrator(client, active_user):
    active_user.state = State.BLOCKED
    active_user.save()
    page = text(ask_reset(client))
    assert "L'administrateur de votre établissement a bloqué votre accès" in page
    assert "Veuillez le contacter." in page
    assert OutgoingMail.objects.count() == 0


@pytest.mark.django_db
def test_active_account_without_an_address_is_sent_to_the_referent(client, active_user):
    active_user.email = ""
    active_user.save()
    page = text(ask_reset(client))
    assert services.NoEmailAddress.message in page and "référent ENT" in page
    assert OutgoingMail.objects.count() == 0


@pytest.mark.django_db
def test_active_account_page_says_the_mail_left_and_to_check_the_spam_folder(client, active_user):
    page = text(ask_reset(client, "  Jean.DUPONT "))  # folded like the login form
    assert services.RESET_SENT_MESSAGE in page
    assert "courriers indésirables" in page and 'role="status"' in page
    assert OutgoingMail.objects.get().to == EMAIL


# --- The whole way, through a real SMTP server ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reset_mail_link_followed_to_the_end(client, smtp, active_user):
    other_session = logged_in_client()

    ask_reset(client)
    mail = smtp.only(to=EMAIL)
    assert mail.subject == "ENT : réinitialisation de votre mot de passe"
    assert "Bonjour Jean," in mail.text and "jean.dupont" in mail.text
    link = reset_link_from_mail(smtp)
    assert f'href="{link}"' in mail.html
    secret = link.removeprefix(LINK_PREFIX)
    assert len(secret) >= 22  # ≥ 128 bits, URL-safe base64

    # The link: the token goes into the session and leaves the URL at once.
    response = open_link(client, link)
    assert response.status_code == 302 and response["Location"] == RESET
    assert response["Referrer-Policy"] == "no-referrer"
    form = client.get(RESET)
    # The form's URL holds no token; no-referrer there would make browsers POST "Origin: null"
    # and fail the CSRF check (tests/e2e/test_flows_browser.py).
    assert form.status_code == 200 and form["Referrer-Policy"] == "same-origin"
    assert secret not in text(form)
    page = text(form)
    assert "<h1>Réinitialisation du mot de passe</h1>" in page
    assert '<label for="id_identifier">Identifiant</label>' in page
    assert '<label for="id_new_password">Nouveau mot de passe</label>' in page
    assert (
        '<label for="id_new_password_confirm">Confirmation du nouveau mot de passe</label>' in page
    )
    assert page.count('autocomplete="new-password"') == 2
    assert 'data-strength-for="id_new_password"' in page
    assert '<button type="submit" class="button">Enregistrer</button>' in page

    smtp.clear()
    done = submit_reset(client)
    assert done.status_code == 302 and done["Location"] == "/auth/login"
    login_page = text(client.get("/auth/login"))
    assert f'role="status"><p class="alert alert--success">{services.PASSWORD_CHANGED_MESSAGE}' in (
        login_page
    )
    assert client.get("/").status_code == 302  # no automatic login

    # The password changed; the old one is refused, the new one works at once.
    user = User.objects.get(pk=active_user.pk)
    assert user.check_password(NEW_PASSWORD) and not user.check_password(STRONG_PASSWORD)
    logged_in_client(password=NEW_PASSWORD)
    # Every other session ended.
    assert other_session.get("/")["Location"].startswith("/auth/login")

    # A short confirmation, without the password; and, as that login came from a browser the
    # account had never used, « Nouvelle connexion à votre compte ENT » (portail.profile.notices).
    mails = {mail.subject: mail for mail in smtp.sent_to(EMAIL)}
    assert set(mails) == {
        "ENT : votre mot de passe a été modifié",
        "Nouvelle connexion à votre compte ENT",
    }
    confirmation = mails["ENT : votre mot de passe a été modifié"]
    assert confirmation.subject == "ENT : votre mot de passe a été modifié"
    assert "dès maintenant" in confirmation.text
    assert NEW_PASSWORD not in confirmation.text and NEW_PASSWORD not in confirmation.html

    # The link is dead after use.
    again = Client()
    dead = open_link(again, link)
    assert dead.status_code == 200 and dead["Referrer-Policy"] == "no-referrer"
    assert services.TokenInvalid.message in text(dead)
    assert not Token.objects.filter(purpose=Token.Purpose.RESET, used_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_database_and_session_hold_only_the_digest_of_the_token(client, smtp, active_user):
    ask_reset(client)
    secret = reset_link_from_mail(smtp).removeprefix(LINK_PREFIX)
    token = Token.objects.get(purpose=Token.Purpose.RESET)
    assert token.digest == tokens.digest(Token.Purpose.RESET, secret)
    assert secret not in json.dumps(list(Token.objects.values()), default=str)

    open_link(client, f"{LINK_PREFIX}{secret}")
    # The emailed secret is spent; the session carries a fresh one, whose digest only is stored.
    fresh = client.session[services.SESSION_RESET_TOKEN]
    assert fresh != secret and client.session[services.SESSION_RESET_USER] == active_user.pk
    continuation = Token.objects.get(purpose=Token.Purpose.RESET, used_at__isnull=True)
    assert continuation.digest == tokens.digest(services.SESSION_PURPOSE, fresh)
    assert fresh not in json.dumps(list(Token.objects.values()), default=str)
    stored_sessions = "".join(Session.objects.values_list("session_data", flat=True))
    decoded = json.dumps([s.get_decoded() for s in Session.objects.all()])
    assert secret not in stored_sessions and secret not in decoded


@pytest.mark.django_db(transaction=True)
def test_same_password_as_before_is_allowed(client, smtp, active_user):
    ask_reset(client)
    open_link(client, reset_link_from_mail(smtp))
    response = submit_reset(client, password=STRONG_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/auth/login"
    logged_in_client(password=STRONG_PASSWORD)


# --- The reset form's refusals ------------------------------------------------------------------


def link_from_queue():
    """The link of the last queued mail (under `db`, mail is queued but never delivered)."""
    body = [m.text for m in OutgoingMail.objects.order_by("pk") if LINK_PREFIX in m.text][-1]
    return LINK_PREFIX + body.split(LINK_PREFIX)[1].split()[0]


@pytest.fixture
def reset_session(client, active_user):
    """A client that asked for a link and opened it: the reset form is in front of it."""
    ask_reset(client)
    link = link_from_queue()
    assert open_link(client, link)["Location"] == RESET
    return link


@pytest.mark.django_db
def test_passwords_must_match(client, reset_session, active_user):
    page = text(submit_reset(client, confirm=NEW_PASSWORD + "x"))
    assert (
        'id="id_new_password_confirm_error"><li>Les deux mots de passe ne concordent pas.' in page
    )
    assert User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)


@pytest.mark.django_db
def test_identifier_typed_must_be_the_links_account(client, reset_session, active_user):
    User.objects.create_user(
        "marie.curie", "x", first_name="Marie", last_name="Curie", state=State.ACTIVE
    )
    page = text(submit_reset(client, identifier="marie.curie"))
    assert f'id="id_identifier_error"><li>{services.IdentifierMismatch.message}' in page
    assert 'aria-invalid="true"' in page
    assert User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)
    assert reset_form_open(client)
    # Folded like everywhere else: capitals, accents and spaces are forgiven.
    assert submit_reset(client, identifier=" JEAN.Dupont ").status_code == 302


@pytest.mark.django_db
def test_weak_password_refused_with_its_reason_on_the_field(client, reset_session, active_user):
    page = text(submit_reset(client, password="dupont2024"))
    assert 'id="id_new_password_error"><li>' in page
    assert User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)
    assert reset_form_open(client)


@pytest.mark.django_db
def test_expired_link_says_so_and_offers_a_new_one(client, active_user):
    ask_reset(client)
    Token.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    page = open_link(client, link_from_queue())
    assert page.status_code == 200 and page["Referrer-Policy"] == "no-referrer"
    body = text(page)
    assert f'role="alert">{services.TokenInvalid.message}' in body
    assert "expiré" in body
    assert f'href="{LOST_PASSWORD}">Demander un nouveau lien</a>' in body


@pytest.mark.django_db
def test_link_expiring_while_the_form_is_open_is_refused(client, reset_session, active_user):
    Token.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.TokenInvalid.message in text(client.get(RESET))
    assert services.TokenInvalid.message in text(submit_reset(client))
    assert User.objects.get(pk=active_user.pk).check_password(STRONG_PASSWORD)


@pytest.mark.django_db
def test_reset_link_lifetime_comes_from_the_setting(client, active_user, settings):
    settings.PORTAIL_RESET_LINK_MINUTES = 15
    before = timezone.now()
    ask_reset(client)
    token = Token.objects.get(purpose=Token.Purpose.RESET)
    assert before + timedelta(minutes=15) <= token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(minutes=15)
    assert "expire dans 15 minutes" in OutgoingMail.objects.get().text


@pytest.mark.django_db
def test_unknown_link_and_reset_page_without_link_say_so(client):
    page = client.get("/auth/reset/not-a-real-token")
    assert page["Referrer-Policy"] == "no-referrer"
    assert services.TokenInvalid.message in text(page)
    assert services.TokenInvalid.message in text(client.get(RESET))
    assert services.TokenInvalid.message in text(submit_reset(client))


# --- Limits, audit, neutral mode --------------------------------------------------------------


@pytest.mark.django_db
def test_reloading_the_confirmation_sends_no_second_mail(client, active_user):
    response = ask_reset(client)
    assert response.redirect_chain == [(LOST_PASSWORD + "?envoye=1", 302)]
    assert services.RESET_SENT_MESSAGE in text(response)
    reload = client.get(LOST_PASSWORD + "?envoye=1")  # F5 on the confirmation
    assert services.RESET_SENT_MESSAGE not in text(reload)
    assert OutgoingMail.objects.count() == 1


@pytest.mark.django_db
def test_lost_password_over_the_address_budget_asks_the_challenge_never_a_429(client, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "recovery:address": (3, 3600)}
    for n in range(3):
        assert ask_reset(client, f"someone.{n}").status_code == 200
    over = ask_reset(client, "someone.else")
    assert over.status_code == 200 and "portail-challenge" in text(over)
    assert "vérification automatique de votre navigateur" in text(over)
    # Another address is not affected.
    other = ask_reset(Client(REMOTE_ADDR="10.0.0.9"), "someone.else")
    assert other.status_code == 200 and "portail-challenge" not in text(other)


@pytest.mark.django_db(transaction=True)
def test_audit_records_the_request_and_the_reset_without_any_secret(client, smtp, active_user):
    ask_reset(client)
    link = reset_link_from_mail(smtp)
    open_link(client, link)
    submit_reset(client)
    requested = Event.objects.get(tag="account.password.reset_requested")
    assert requested.target == active_user and requested.data == {"outcome": "sent"}
    assert requested.ip == "127.0.0.1"
    done = Event.objects.get(tag="account.password.reset")
    assert done.target == active_user
    secret = link.removeprefix(LINK_PREFIX)
    dump = json.dumps(list(Event.objects.values()), default=str)
    assert secret not in dump and NEW_PASSWORD not in dump
    assert tokens.digest(Token.Purpose.RESET, secret) not in dump


NEUTRAL_CASES = ["unknown", "pending", "blocked", "active"]


@pytest.mark.django_db
def test_neutral_mode_answers_the_same_whatever_the_account(
    client, settings, active_user, pending_pupil
):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = True
    blocked = User.objects.create_user(
        "bob.bloque", "x", first_name="Bob", last_name="Bloqué", state=State.BLOCKED, email="b@x.fr"
    )
    identifiers = {
        "unknown": "personne.inconnue",
        "pending": pending_pupil[0].identifier,
        "blocked": blocked.identifier,
        "active": "jean.dupont",
    }
    pages = {case: ask_reset(client, identifiers[case]) for case in NEUTRAL_CASES}
    assert {p.status_code for p in pages.values()} == {200}
    bodies = {text(p) for p in pages.values()}
    assert len(bodies) == 1, "the answer differs between accounts"
    assert services.NEUTRAL_MESSAGE in bodies.pop()
    assert normalised(services.NEUTRAL_MESSAGE).startswith(
        "Si un compte correspond, un courriel vient d'être envoyé"
    )
    # It still sends the mail when the account matches, and only then.
    assert list(OutgoingMail.objects.values_list("to", flat=True)) == [EMAIL]


@pytest.mark.django_db(transaction=True)
def test_database_dump_reveals_no_usable_reset_token(client, smtp, active_user):
    ask_reset(client)
    secret = reset_link_from_mail(smtp).removeprefix(LINK_PREFIX)
    dump = json.dumps(
        [list(OutgoingMail.objects.values()), list(Token.objects.values())], default=str
    )
    assert secret not in dump


@pytest.mark.django_db
def test_guessing_reset_links_over_the_address_budget_meets_the_challenge(client, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "reset:address": (2, 86400)}
    for n in range(2):
        assert client.get(f"/auth/reset/guess{n}").status_code == 200
    # The third link is not even checked: it waits, sealed, for the form's challenge.
    response = client.get("/auth/reset/guess3")
    assert response.status_code == 302 and response["Referrer-Policy"] == "no-referrer"
    assert "portail-challenge" in text(client.get(response["Location"]))


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.labelled, self.controls = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.labelled.add(attrs["for"])
        if tag in {"input", "select", "textarea"} and attrs.get("type") != "hidden":
            self.controls.append(attrs.get("id"))


@pytest.mark.django_db
def test_every_control_of_the_recovery_pages_has_a_label(client, reset_session):
    pages = [HELP, LOST_PASSWORD, "/auth/lost-identifier", RESET]
    for url in pages:
        parser = _Inputs()
        parser.feed(text(client.get(url)))
        unlabelled = [c for c in parser.controls if c not in parser.labelled]
        assert unlabelled == [], url


@pytest.mark.django_db
def test_recovery_forms_carry_their_csrf_token(active_user):
    browser = Client(enforce_csrf_checks=True)
    for url, data in [
        (LOST_PASSWORD, {"identifier": "jean.dupont"}),
        ("/auth/lost-identifier", {"email": "jean.dupont@example.org"}),
    ]:
        page = text(browser.get(url))
        csrf = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        response = browser.post(url, {**data, "csrfmiddlewaretoken": csrf}, follow=True)
        assert response.status_code == 200 and 'role="status"' in text(response), url
    assert browser.get(urlsplit(link_from_queue()).path)["Location"] == RESET
    page = text(browser.get(RESET))
    csrf = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    response = browser.post(
        RESET,
        {
            "identifier": "jean.dupont",
            "new_password": NEW_PASSWORD,
            "new_password_confirm": NEW_PASSWORD,
            "csrfmiddlewaretoken": csrf,
        },
    )
    assert response.status_code == 302 and response["Location"] == "/auth/login"


@pytest.mark.django_db
def test_reset_form_says_which_password_field_is_empty(client, reset_session):
    page = text(client.post(RESET, {"identifier": "jean.dupont"}))
    assert "Choisissez votre nouveau mot de passe." in page
    assert "Saisissez une seconde fois le nouveau mot de passe." in page
