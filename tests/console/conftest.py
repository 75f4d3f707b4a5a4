"""Two schools, A and B, each with a class, a pupil, a parent; a référent of A only."""

import pyotp
import pytest

from portail.accounts.models import Profile, State, User
from portail.accounts.provisioning import create_account
from portail.console import otp
from portail.console.models import TOTPDevice
from portail.directory.models import Function, Relationship, SchoolClass, Structure
from tests import helpers
from tests.conftest import STRONG_PASSWORD, enter_admin

TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def text(response):
    # The one reading of a page for comparisons (NBSP and ’ read as the seed's space and ').
    return helpers.text(response)


def staff(identifier, structure, **fields):
    user = User.objects.create_user(
        identifier,
        STRONG_PASSWORD,
        first_name=fields.pop("first_name", "Anne"),
        last_name=fields.pop("last_name", "Martin"),
        profile=Profile.PERSONNEL,
        state=State.ACTIVE,
        **fields,
    )
    if structure is not None:
        user.structures.set([structure])
    return user


def enrol(user, secret=TOTP_SECRET):
    """A confirmed TOTP device, as after enrolment."""
    from django.utils import timezone

    return TOTPDevice.objects.create(
        user=user, encrypted_secret=otp.encrypt(secret), confirmed_at=timezone.now()
    )


def totp_now(secret=TOTP_SECRET):
    return pyotp.TOTP(secret).now()


@pytest.fixture
def school_b(db):
    return Structure.objects.create(uai="0771235B", name="Lycée Berthe Morisot")


@pytest.fixture
def class_b(school_b):
    return SchoolClass.objects.create(structure=school_b, name="1ère 2")


@pytest.fixture
def referent(school):
    user = staff("anne.martin", school)
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school)
    return user


@pytest.fixture
def referent_b(school_b):
    user = staff("bruno.roche", school_b, first_name="Bruno", last_name="Roche")
    Function.objects.create(user=user, role=Function.Role.REFERENT, structure=school_b)
    return user


@pytest.fixture
def console(client, referent):
    """The référent of school A, logged in with the second factor already checked."""
    enrol(referent)
    enter_admin(client, referent)  # logged in, second factor checked
    return client


@pytest.fixture
def pupil_a(school, school_class):
    return create_account(
        "Élodie", "Dupré", Profile.ELEVE, structures=[school], classes=[school_class]
    )


@pytest.fixture
def parent_a(school):
    user, _ = create_account("Paul", "Dupré", Profile.PARENT, structures=[school])
    return user


@pytest.fixture
def b_side(school_b, class_b):
    """School B's pupil (pending, with code), active parent linked to it, and the code."""
    pupil, code = create_account(
        "Bastien", "Berger", Profile.ELEVE, structures=[school_b], classes=[class_b]
    )
    parent = User.objects.create_user(
        "berenice.berger",
        STRONG_PASSWORD,
        first_name="Bérénice",
        last_name="Berger",
        profile=Profile.PARENT,
        state=State.ACTIVE,
        email="berenice@example.org",
    )
    parent.structures.set([school_b])
    Relationship.objects.create(parent=parent, child=pupil)
    return {"pupil": pupil, "code": code, "parent": parent, "class": class_b}
