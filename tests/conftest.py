import pytest
from django.core.cache import cache

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account
from portail.directory.models import SchoolClass, Structure
from tests.smtp import smtp, smtp_server  # noqa: F401 (fixtures: a real aiosmtpd server)

STRONG_PASSWORD = "cheval orange batterie agrafe"


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
    user = User.objects.create_user(
        "jean.dupont",
        STRONG_PASSWORD,
        first_name="Jean",
        last_name="Dupont",
        profile=Profile.PARENT,
        state=State.ACTIVE,
        email="jean.dupont@example.org",
    )
    user.structures.set([school])
    return user


def enter_admin(client, user):
    """Log `user` in with the console's second factor checked: what /admin/ requires."""
    from portail.console.views import SESSION_VERIFIED

    client.force_login(user)
    session = client.session
    session[SESSION_VERIFIED] = user.pk
    session.save()


from tests.browser import axe, browser  # noqa: E402,F401  (session-wide browser fixtures)
