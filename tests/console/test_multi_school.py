"""An account in two schools: each school's référent sees only his own school's part of it."""

import pytest

from tests.console.conftest import text

pytestmark = pytest.mark.django_db


@pytest.fixture
def pupil_in_both(pupil_a, school_b, class_b):
    pupil, _code = pupil_a
    pupil.structures.add(school_b)
    pupil.classes.add(class_b)
    return pupil


def test_account_page_shows_only_the_referents_school_and_classes(
    console, pupil_in_both, school_b, class_b
):
    page = text(console.get(f"/console/comptes/{pupil_in_both.pk}/"))
    assert "Lycée Claude Monet" in page and "2de 3" in page
    assert school_b.name not in page and class_b.name not in page


def test_search_lists_only_the_referents_classes(console, pupil_in_both, class_b):
    page = text(console.get("/console/", {"q": pupil_in_both.last_name}))
    assert pupil_in_both.identifier in page and class_b.name not in page
