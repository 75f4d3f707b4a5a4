import pytest

from portail.accounts.passwords import FAIBLE, FORTE, MODEREE, evaluate, pool_entropy_bits

ELODIE = {
    "first_name": "Élodie",
    "last_name": "Dupré",
    "identifier": "elodie.dupre",
    "school_names": ["Lycée Claude Monet"],
}


@pytest.mark.parametrize(
    "password",
    [
        "azerty12",
        "soleil12",
        "Motdepasse2026",
        "Soleil2026!",
        "password123",
        "123456789",
        "Mathis2010",
        "tzc3baqh",
    ],
)
def test_common_or_guessable_passwords_are_faible_and_refused(password):
    result = evaluate(password, **ELODIE)
    assert result.level == FAIBLE and not result.acceptable and result.errors


@pytest.mark.parametrize(
    "password",
    ["elodie.dupre2026x", "Dupre2026!!", "Claudemonet75!", "lyceeclaudemonet", "ÉLODIE-dupré-42"],
)
def test_passwords_built_on_own_names_or_school_are_refused(password):
    result = evaluate(password, **ELODIE)
    assert not result.acceptable
    assert "prénom" in result.errors[0] or "trop" in result.errors[0]


def test_too_short_is_refused_with_the_reason():
    assert (
        evaluate("k7m!", **ELODIE).errors[0].startswith("Le mot de passe doit comporter au moins 8")
    )


def test_long_passwords_accepted_up_to_256_and_never_truncated():
    long_one = "cheval orange batterie agrafe " * 8  # 240 characters
    assert evaluate(long_one, **ELODIE).acceptable
    assert not evaluate("x" * 257, **ELODIE).acceptable


@pytest.mark.parametrize(
    "password,level",
    [("k7mq2zxp9w", MODEREE), ("cheval orange batterie agrafe", FORTE), ("monchatestroux", FORTE)],
)
def test_levels(password, level):
    result = evaluate(password, **ELODIE)
    assert result.acceptable and result.level == level


def test_accepted_passwords_meet_cnil_50_bits():
    # CNIL 2022-100, case 2: at least 50 bits in its formal measure.
    for password in ["k7mq2zxp9w", "monchatestroux", "cheval orange batterie agrafe"]:
        assert evaluate(password).acceptable and pool_entropy_bits(password) >= 50
    assert not evaluate("k7mq2zxp").acceptable  # 8 lowercase+digits: 41 bits


def test_no_composition_rule_lowercase_passphrase_is_strong():
    assert evaluate("les vacances a la mer sont finies").level == FORTE


def test_argon2_hashes_are_verified_by_portails_hasher():
    """Django verifies with the LAST hasher of an algorithm name in PASSWORD_HASHERS: another
    "argon2" hasher listed after Portail's (Django's own was, until session 9) would do every
    verification instead of it."""
    from django.contrib.auth.hashers import identify_hasher, make_password

    from portail.accounts.hashers import PortailArgon2PasswordHasher

    encoded = make_password("cheval orange batterie agrafe")
    assert encoded.startswith("argon2$argon2id$")
    assert type(identify_hasher(encoded)) is PortailArgon2PasswordHasher
