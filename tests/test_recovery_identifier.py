"""Lost identifier: one account, or several sharing an address (a parent and the children)."""

import pytest
from django.test import Client

from portail.accounts.forms import INVALID_EMAIL
from portail.accounts.models import Profile, State
from portail.audit.models import Event
from portail.directory.models import Structure
from portail.mail.models import OutgoingMail
from portail.recovery import services
from portail.typography import normalised
from tests.helpers import account, text

LOST_IDENTIFIER = "/auth/lost-identifier"
DETAILS = "/auth/lost-identifier/details"
FAMILY = "famille.martin@example.org"
UNKNOWN = "Adresse courriel inconnue. Veuillez contacter votre administrateur ENT."


def ask(client, email):
    return client.post(LOST_IDENTIFIER, {"email": email}, follow=True)


def details(client, first_name):
    return client.post(DETAILS, {"first_name": first_name}, follow=True)


@pytest.fixture
def other_school(db):
    return Structure.objects.create(uai="0770001B", name="Collège Jean Moulin")


@pytest.fixture
def family(school):
    """A parent and two children with distinct first names, all on one address."""
    return [
        account("sophie.martin", "Sophie", "Martin", FAMILY, [school], profile=Profile.PARENT),
        account("lea.martin", "Léa", "Martin", FAMILY, [school]),
        account("hugo.martin", "Hugo", "Martin", FAMILY, [school]),
    ]


@pytest.fixture
def cousins(school, other_school):
    """Two pupils called Lucas (in two schools) and their mother share one address."""
    return [
        account("claire.bernard", "Claire", "Bernard", FAMILY, [school], profile=Profile.PARENT),
        account("lucas.bernard", "Lucas", "Bernard", FAMILY, [school]),
        account("lucas.bernard2", "Lucas", "Bernard", FAMILY, [other_school]),
    ]


@pytest.mark.django_db
def test_lost_identifier_page_has_its_field_button_and_way_back(client):
    page = text(client.get(LOST_IDENTIFIER))
    assert '<label for="id_email">Adresse de messagerie</label>' in page
    assert 'type="email"' in page and 'autocomplete="email"' in page
    assert '<button type="submit" class="button">Envoyer</button>' in page
    assert "href=\"/auth/login\">Retour à l'écran d'accueil</a>" in page


@pytest.mark.django_db
def test_unknown_address_gets_the_seed_message(client, active_user):
    page = text(ask(client, "personne@example.org"))
    # The error summary (role=alert, focused on load) links the message to the field to fix.
    assert 'class="error-summary" id="resume-erreurs" role="alert"' in page
    assert f'<a href="#id_email" data-error-link id="resume-erreurs-1">{UNKNOWN}</a>' in page
    assert OutgoingMail.objects.count() == 0
    event = Event.objects.get(tag="account.identifier.requested")
    assert event.data == {"outcome": "unknown"} and event.target is None


@pytest.mark.django_db
def test_invalid_address_is_refused_in_french(client):
    page = text(ask(client, "pas-une-adresse"))
    # The same tailored message as on the first-connection page.
    assert INVALID_EMAIL in page
    assert 'aria-invalid="true"' in page


@pytest.mark.django_db(transaction=True)
def test_one_account_gets_its_identifier_by_mail(client, smtp, active_user):
    page = text(ask(client, "  Jean.Dupont@EXAMPLE.org "))  # case and spaces forgiven
    assert f'role="status">{services.IDENTIFIER_SENT_MESSAGE}' in page
    mail = smtp.only(to="jean.dupont@example.org")
    assert mail.subject == "ENT : rappel de votre identifiant"
    assert "Identifiant de Jean Dupont : jean.dupont" in mail.text
    assert "<strong>jean.dupont</strong>" in mail.html
    assert "jean.dupont" not in page.replace("jean.dupont@example.org", "")
    event = Event.objects.get(tag="account.identifier.requested")
    assert event.target == active_user and event.data == {"outcome": "sent"}


@pytest.mark.django_db
def test_address_stored_with_capitals_is_still_found(client, active_user):
    active_user.email = "Jean.Dupont@Example.org"
    active_user.save()
    assert services.IDENTIFIER_SENT_MESSAGE in text(ask(client, "jean.dupont@example.org"))
    assert OutgoingMail.objects.get().to == "Jean.Dupont@Example.org"


@pytest.mark.django_db(transaction=True)
def test_shared_address_asks_the_first_name_then_sends_only_that_identifier(client, smtp, family):
    step = ask(client, FAMILY)
    assert step.redirect_chain == [(DETAILS, 302)]
    assert smtp.messages == []
    page = text(step)
    assert '<label for="id_first_name">Prénom</label>' in page
    assert "Établissement" not in page  # first names do not repeat: no school asked
    for user in family:  # the page never lists the accounts of the address
        assert user.identifier not in page and user.first_name not in page

    done = details(client, " lea ")  # accents, case and spaces forgiven
    assert f'role="status">{services.DETAILS_SENT_MESSAGE}' in text(done)
    mail = smtp.only(to=FAMILY)
    assert "Léa Martin : lea.martin (Lycée Claude Monet)" in mail.text
    assert "hugo.martin" not in mail.text and "sophie.martin" not in mail.text
    # The step is over: the address left the session.
    assert services.SESSION_IDENTIFIER_EMAIL not in client.session
    assert client.get(DETAILS)["Location"] == LOST_IDENTIFIER


@pytest.mark.django_db(transaction=True)
def test_shared_address_second_step_answers_alike_for_a_right_and_a_wrong_first_name(
    smtp, family, settings
):
    settings.PORTAIL_RECOVERY_MAIL_MINUTES = 0  # two people, far apart in time
    pages = {}
    for first_name in ["Léa", "Zoé"]:
        browser = Client()
        ask(browser, FAMILY)
        pages[first_name] = text(details(browser, first_name))
    assert pages["Léa"] == pages["Zoé"]
    assert f'role="status">{services.DETAILS_SENT_MESSAGE}' in pages["Zoé"]
    # The mail, sent to the address itself, says which: the identifier, or that none matched.
    right, wrong = smtp.sent_to(FAMILY)
    assert "lea.martin" in right.text
    assert "ne porte le prénom indiqué" in wrong.text
    assert "Zoé" not in wrong.text  # what was typed is not echoed to the mailbox
    for user in family:
        assert user.identifier not in wrong.text and user.first_name not in wrong.text


@pytest.mark.django_db(transaction=True)
def test_repeated_first_names_get_every_identifier_with_its_school_and_no_school_list(
    client, smtp, cousins, other_school
):
    ask(client, FAMILY)
    page = text(client.get(DETAILS))
    # Neither the schools nor a hint that first names repeat: only the first name is asked.
    assert "<select" not in page and 'id="id_structure"' not in page
    assert "Collège Jean Moulin" not in page and "Lycée Claude Monet" not in page

    details(client, "Lucas")
    mail = smtp.only(to=FAMILY)
    assert "Lucas Bernard : lucas.bernard (Lycée Claude Monet)" in mail.text
    assert "Lucas Bernard : lucas.bernard2 (Collège Jean Moulin)" in mail.text
    assert "claire.bernard" not in mail.text
    assert "<strong>lucas.bernard2</strong> (Collège Jean Moulin)" in mail.html


@pytest.mark.django_db(transaction=True)
def test_a_unique_first_name_gets_only_its_identifier(client, smtp, cousins):
    ask(client, FAMILY)
    details(client, "Claire")
    mail = smtp.only(to=FAMILY)
    assert "claire.bernard" in mail.text and "lucas" not in mail.text


@pytest.mark.django_db
def test_details_step_without_an_address_goes_back_to_the_first_step(client, family):
    assert client.get(DETAILS)["Location"] == LOST_IDENTIFIER
    assert details(client, "Léa").redirect_chain == [(LOST_IDENTIFIER, 302)]
    assert OutgoingMail.objects.count() == 0


@pytest.mark.django_db
def test_pending_and_blocked_accounts_are_not_reminded(client, school):
    account("paul.petit", "Paul", "Petit", "paul@example.org", state=State.PENDING)
    blocked = account("rose.petit", "Rose", "Petit", "rose@example.org", state=State.BLOCKED)
    assert UNKNOWN in text(ask(client, "paul@example.org"))
    page = text(ask(client, "rose@example.org"))
    assert "L'administrateur de votre établissement a bloqué votre accès" in page
    assert Event.objects.filter(target=blocked, data__outcome="blocked").exists()
    assert OutgoingMail.objects.count() == 0


CHALLENGE = "vérification automatique de votre navigateur"


@pytest.mark.django_db
def test_lost_identifier_over_the_address_budget_asks_the_challenge(client, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "recovery:address": (3, 3600)}
    for n in range(3):
        assert ask(client, f"x{n}@example.org").status_code == 200
    over = ask(client, "y@example.org")
    assert over.status_code == 200 and CHALLENGE in text(over)
    assert Event.objects.filter(data__outcome="unknown").count() == 3  # the 4th was not served


@pytest.mark.django_db
def test_the_second_step_counts_against_the_per_address_budget_too(client, family, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "recovery:address": (3, 3600)}
    ask(client, FAMILY)
    details(client, "Zoé")
    ask(client, FAMILY)
    over = details(client, "Zoé")
    assert over.status_code == 200 and CHALLENGE in text(over) and "portail-challenge" in text(over)


@pytest.mark.django_db
def test_neutral_mode_answers_the_same_for_unknown_single_and_shared_addresses(
    client, settings, active_user, family
):
    settings.PORTAIL_NEUTRAL_RECOVERY_MESSAGES = True
    answers = [ask(client, a) for a in ["personne@example.org", active_user.email, FAMILY]]
    assert {r.status_code for r in answers} == {200}
    bodies = {text(r) for r in answers}
    assert len(bodies) == 1
    assert services.NEUTRAL_MESSAGE in bodies.pop()
    # Mail still leaves when accounts match: the shared address gets one mail listing its
    # accounts, since asking the first name would reveal that several exist.
    sent = {m.to: normalised(m.text) for m in OutgoingMail.objects.all()}
    assert set(sent) == {active_user.email, FAMILY}
    for user in family:
        assert f"{user.first_name} {user.last_name} : {user.identifier}" in sent[FAMILY]
