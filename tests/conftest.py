import pytest
from django.core.cache import cache

from portail.accounts.models import Profile
from portail.accounts.provisioning import create_account
from portail.directory.models import SchoolClass, Structure
from tests.helpers import STRONG_PASSWORD, account
from tests.smtp import smtp, smtp_server  # noqa: F401 (fixtures: a real aiosmtpd server)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit counters live in the cache: each test starts from zero.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def school(db):
    return Structure.objects.create(uai="0751234A", name="Lycée Claude Monet")


@pytest.fixture
def school_class(school):
    return SchoolClass.objects.create(structure=school, name="2nde 3")


@pytest.fixture
def pending_pupil(school, school_class):
    """A pupil not yet activated, with its activation code: (user, code)."""
    return create_account(
        "Élodie", "Dupré", Profile.ELEVE, structures=[school], classes=[school_class]
    )


@pytest.fixture
def active_user(school):
    return account(
        "jean.dupont",
        "Jean",
        "Dupont",
        "jean.dupont@example.org",
        [school],
        password=STRONG_PASSWORD,
        profile=Profile.PARENT,
    )


def enter_admin(client, user):
    """Log `user` in with the console's second factor checked: what /admin/ requires."""
    from portail.console.views import SESSION_VERIFIED

    client.force_login(user)
    session = client.session
    session[SESSION_VERIFIED] = user.pk
    session.save()


from tests.browser import axe, browser  # noqa: E402,F401  (session-wide browser fixtures)
