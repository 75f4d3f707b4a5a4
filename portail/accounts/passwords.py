"""The password policy: one function, `evaluate`, for the server's check and the strength meter.

Thresholds and where they come from
-----------------------------------
* At least 8 characters — CNIL délibération 2022-100, case 2 ("mot de passe et restriction
  d'accès au compte"): our rate limits (settings.PORTAIL_RATE_LIMITS, 10 failures per identifier
  per 15 minutes) are that restriction, so the required entropy is 50 bits, not 80.
  NIST 800-63B §3.1.1.2 asks for at least 8 as well.
* At most 256 characters accepted, never truncated (NIST 800-63B: at least 64 SHALL be accepted;
  the bound only keeps a multi-megabyte "password" from costing Argon2 time).
* No composition rules (NIST 800-63B §3.1.1.2), paste allowed everywhere.
* Entropy ≥ 50 bits in the CNIL's own measure, length × log2(size of the character classes used):
  e.g. 11 lowercase letters (51.7), 10 lowercase letters and digits (51.7), 9 with capitals and
  digits (53.6), a passphrase of a few words.
* And not guessable, the CNIL's alternative "devinabilité" measure: zxcvbn, given the user's first
  name, last name, identifier and school as context, must estimate at least 10^8 guesses (score 3)
  — that refuses predictable passwords which pass the formal count, such as a first name
  followed by a year ("Mathis2010", 59 bits). Common passwords
  (French and English lists, also with digits or symbols around them: "Soleil2026!") and
  passwords built on the user's own names are refused outright.

Levels shown by the meter: "Faible" (refused, with the reason), "Modérée" (accepted: score 3),
"Forte" (accepted: score 4, at least 10^10 guesses).

Cost bound (issue 7 §3: no anonymous request costs more than a login)
---------------------------------------------------------------------
zxcvbn's time grows with the square of the length and with the number of l33t substitutions: 72
l33t characters cost about five Argon2id verifications. It analyses at most the first
ZXCVBN_ANALYSED characters (16: about a fifth of an Argon2id verification on random l33t input,
where 24 cost one and 72 cost thirty; bench/strength_flood.py prints them), so a request costs
a bounded amount whatever is typed. A longer password is judged on its length: from 17
characters on, even digits alone give 17 × log2(10) = 56 bits in the CNIL's formal measure,
above the 50 bits CNIL 2022-100 asks when access is restricted (case 2: our rate limits);
NIST 800-63B §3.1.1.2 asks only that the whole password be checked against a blocklist, which
the common-password and personal-words checks still do on every character. Its first 16
characters must still not be trivially predictable (zxcvbn score ≥ 2: "1234567890…",
"passwordpassword…"). The anonymous meter also runs at most PORTAIL_STRENGTH_IN_FLIGHT
analyses at a time per node (`analysis_slot`): a flood from many addresses gets quick refusals
instead of the login's CPU.
Scores are kept briefly in the process (the last SCORE_CACHE_SIZE), under a keyed digest of
the analysed characters and their context, never the password itself.
"""

import fcntl
import logging
import math
import re
import string
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.password_validation import CommonPasswordValidator
from django.utils.crypto import salted_hmac
from zxcvbn import zxcvbn

from .identifiers import identifier_part

log = logging.getLogger(__name__)

MIN_LENGTH = 8
MAX_LENGTH = 256
MIN_ENTROPY_BITS = 50  # CNIL 2022-100, case 2
# Fewer characters than this left once the user's own names are taken out: "built on" them.
PERSONAL_REST_MIN = 6
MIN_ZXCVBN_SCORE = 3  # zxcvbn: score 3 = at least 10^8 guesses
STRONG_ZXCVBN_SCORE = 4
# zxcvbn analyses at most this many characters (cost bound, see the module's docstring);
# ceil(50 / log2(10)) = 16: beyond, length alone passes CNIL 2022-100 case 2 (50 bits).
ZXCVBN_ANALYSED = 16
# A longer password's analysed beginning must not be trivially predictable (10^6 guesses).
LONG_PREFIX_MIN_SCORE = 2
# Scores kept per process for repeated questions (the meter asks as the user types).
SCORE_CACHE_SIZE = 512

FAIBLE, MODEREE, FORTE = "Faible", "Modérée", "Forte"

_FR_COMMON = Path(__file__).parent / "data" / "common-passwords-fr.txt"


@dataclass
class Strength:
    level: str  # FAIBLE, MODEREE or FORTE
    errors: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return not self.errors

    @property
    def percent(self) -> int:
        return {FAIBLE: 33, MODEREE: 66, FORTE: 100}[self.level]


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    english = CommonPasswordValidator().passwords  # Django's 20,000 most common
    french = {
        line.strip().lower()
        for line in _FR_COMMON.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    return frozenset(english | french)


def pool_entropy_bits(password: str) -> float:
    """The CNIL's formal measure: length × log2(size of the character classes present)."""
    pool = 0
    if any(c in string.ascii_lowercase for c in password):
        pool += 26
    if any(c in string.ascii_uppercase for c in password):
        pool += 26
    if any(c in string.digits for c in password):
        pool += 10
    if any(not c.isascii() for c in password):
        pool += 64  # accented letters and other scripts
    if any(c.isascii() and not c.isalnum() for c in password):
        pool += 33  # ASCII punctuation and space
    return len(password) * math.log2(pool) if pool else 0.0


def personal_words(first_name="", last_name="", identifier="", school_names=()) -> list[str]:
    """The user's own words, folded like identifiers, longest first."""
    words = [first_name, last_name, identifier, *identifier.split(".")]
    words += [w for w in first_name.split() + last_name.split()]
    for name in school_names:
        words += [name, *name.split()]
    folded = {identifier_part(w) for w in words}
    return sorted((w for w in folded if len(w) >= 3), key=len, reverse=True)


def _without(folded: str, words: list[str]) -> str:
    for word in words:
        folded = folded.replace(word, "")
    return folded


_scores: OrderedDict[str, int] = OrderedDict()
_scores_lock = threading.Lock()


def zxcvbn_score(password: str, words: list[str]) -> int:
    """zxcvbn's score of the first ZXCVBN_ANALYSED characters, given the user's own words."""
    if not password:
        return 0
    analysed = password[:ZXCVBN_ANALYSED]
    # Keyed digest of what is analysed and its context: the cache never holds a password.
    key = salted_hmac(
        "portail.accounts.passwords.zxcvbn_score", "\0".join([analysed, *words]), algorithm="sha256"
    ).hexdigest()
    with _scores_lock:
        if key in _scores:
            _scores.move_to_end(key)
            return _scores[key]
    score = zxcvbn(analysed, user_inputs=words)["score"]
    with _scores_lock:
        _scores[key] = score
        if len(_scores) > SCORE_CACHE_SIZE:
            _scores.popitem(last=False)
    return score


def evaluate(password: str, *, first_name="", last_name="", identifier="", school_names=()):
    """Judge a candidate password. Never raises; `errors` are French sentences for the user."""
    errors = []
    if len(password) < MIN_LENGTH:
        errors.append(f"Le mot de passe doit comporter au moins {MIN_LENGTH} caractères.")
    if len(password) > MAX_LENGTH:
        errors.append(f"Le mot de passe ne peut pas dépasser {MAX_LENGTH} caractères.")
        return Strength(FAIBLE, errors)

    folded = identifier_part(password)
    words = personal_words(first_name, last_name, identifier, school_names)
    letters = re.sub(r"[^a-z]", "", folded)
    common = common_passwords()
    if password.lower() in common or folded in common or letters in common:
        errors.append("Ce mot de passe est trop courant : il figure dans les listes des pirates.")
    elif (
        words
        and len(_without(folded, words)) < PERSONAL_REST_MIN
        and len(folded) != len(_without(folded, words))
    ):
        # Built on the user's own names: what is left once they are taken out is too short.
        errors.append(
            "Le mot de passe ne doit pas reprendre votre prénom, votre nom, votre identifiant "
            "ou le nom de votre établissement."
        )

    score = zxcvbn_score(password, words)
    if len(password) > ZXCVBN_ANALYSED and score >= LONG_PREFIX_MIN_SCORE:
        score = max(score, MIN_ZXCVBN_SCORE)  # judged on its length beyond the analysed part
    if not errors and (pool_entropy_bits(password) < MIN_ENTROPY_BITS or score < MIN_ZXCVBN_SCORE):
        errors.append(
            "Ce mot de passe est trop facile à deviner. Allongez-le, par exemple avec plusieurs "
            "mots qui n’ont rien à voir entre eux."
        )
    if errors:
        return Strength(FAIBLE, errors)
    return Strength(FORTE if score >= STRONG_ZXCVBN_SCORE else MODEREE)


def evaluate_for_user(password: str, user) -> Strength:
    schools = [s.name for s in user.structures.all()] if user.pk else []
    return evaluate(
        password,
        first_name=user.first_name,
        last_name=user.last_name,
        identifier=user.identifier,
        school_names=schools,
    )


# --- At most N analyses at a time per node, for the anonymous meter -------------------------

_slot_locks: list = []
_slot_files: list = []
_slots_setup = threading.Lock()


def _slots():
    with _slots_setup:
        if not _slot_locks:
            directory = Path(settings.VAR_DIR) / "strength-slots"
            for n in range(max(1, settings.PORTAIL_STRENGTH_IN_FLIGHT)):
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                    handle = open(directory / f"{n}.lock", "a+b")  # noqa: SIM115 (kept open)
                except OSError as exc:
                    # A read-only VAR_DIR: the slots hold within each worker only (no 500).
                    log.warning("strength slots without %s: %r", directory, exc)
                    handle = None
                _slot_files.append(handle)
                _slot_locks.append(threading.Lock())
    return zip(_slot_locks, _slot_files, strict=True)


@contextmanager
def analysis_slot():
    """Yield True with one of the node's analysis slots held, or False at once if all are busy.

    A slot is a thread lock (threads of one worker) plus an flock on a file under VAR_DIR
    (the workers of one node); the kernel drops the flock if a worker dies.
    """
    for lock, handle in _slots():
        if not lock.acquire(blocking=False):
            continue
        try:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.release()
            continue
        try:
            yield True
        finally:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
            lock.release()
        return
    yield False
