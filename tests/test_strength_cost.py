"""The strength meter's cost is bounded whatever is typed (issue 7 §3)."""

import pytest

from portail.accounts import passwords
from portail.accounts.passwords import ZXCVBN_ANALYSED, evaluate, evaluate_for_user
from tests.helpers import STRONG_PASSWORD

WORST = ("4@3$1!0|7+" * 8)[:72]  # l33t characters: zxcvbn's slowest input


@pytest.fixture
def zxcvbn_inputs(monkeypatch):
    """What zxcvbn is really asked to analyse (the real zxcvbn still runs)."""
    seen = []
    real = passwords.zxcvbn

    def recording(password, user_inputs=None):
        seen.append(password)
        return real(password, user_inputs=user_inputs)

    monkeypatch.setattr(passwords, "zxcvbn", recording)
    passwords._scores.clear()
    yield seen
    passwords._scores.clear()


@pytest.mark.parametrize("typed", [WORST, "k" * 256, "é" * 200, STRONG_PASSWORD * 3])
def test_zxcvbn_never_analyses_more_than_the_bound(zxcvbn_inputs, typed):
    evaluate(typed, identifier="jean.dupont")
    assert zxcvbn_inputs and all(len(p) <= ZXCVBN_ANALYSED for p in zxcvbn_inputs)


def test_the_anonymous_endpoint_runs_the_same_bound(client, db, zxcvbn_inputs):
    answer = client.post("/auth/password-strength", {"password": WORST, "identifier": "x" * 5000})
    assert answer.status_code == 200 and answer.json()["level"]
    assert zxcvbn_inputs == [WORST[:ZXCVBN_ANALYSED]]


def test_activation_and_reset_use_the_same_bound(active_user, zxcvbn_inputs):
    # The activation, reset and account forms call evaluate_for_user.
    assert evaluate_for_user(WORST + "Zq", active_user).acceptable
    assert all(len(p) <= ZXCVBN_ANALYSED for p in zxcvbn_inputs)


def test_a_repeated_question_is_answered_from_a_cache_that_holds_no_password(zxcvbn_inputs):
    first = evaluate(WORST, identifier="jean.dupont")
    again = evaluate(WORST, identifier="jean.dupont")
    assert (first.level, first.errors) == (again.level, again.errors)
    assert len(zxcvbn_inputs) == 1
    assert all(WORST[:8] not in key for key in passwords._scores)
    # Another context (another user's names) is another question.
    evaluate(WORST, identifier="marie.curie")
    assert len(zxcvbn_inputs) == 2


@pytest.mark.parametrize(
    "password",
    [
        "cheval orange batterie agrafe et un chapeau",  # a passphrase longer than the bound
        "Le petit chat est mort hier soir",
        "j7#Kq2!vM9@xL4$wR8&nT5^bZ1",
    ],
)
def test_a_longer_password_is_judged_on_its_length(password):
    assert len(password) > ZXCVBN_ANALYSED
    assert evaluate(password, identifier="jean.dupont").acceptable


@pytest.mark.parametrize(
    "password",
    ["1234567890123456789012345678", "passwordpasswordpassword1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"],
)
def test_a_long_password_with_a_trivial_beginning_is_still_refused(password):
    assert len(password) > ZXCVBN_ANALYSED
    assert not evaluate(password, identifier="jean.dupont").acceptable


def test_a_long_password_on_the_blocklist_or_own_names_is_refused():
    # The cheap checks still read every character.
    assert not evaluate("dupontjeandupontjeandupontjean", identifier="jean.dupont").acceptable


def test_the_anonymous_endpoint_keeps_a_limit(client, db, settings):
    settings.PORTAIL_RATE_LIMITS = {**settings.PORTAIL_RATE_LIMITS, "strength:ip": (3, 600)}
    for _ in range(3):
        assert client.post("/auth/password-strength", {"password": WORST}).status_code == 200
    refused = client.post("/auth/password-strength", {"password": WORST})
    assert refused.status_code == 429 and refused["Retry-After"]


def test_the_meter_refuses_at_once_when_the_node_analyses_enough_already(client, db):
    # Another request of this worker holds every slot: the answer is an immediate refusal.
    slots = list(passwords._slots())
    held = [lock.acquire(blocking=False) for lock, _file in slots]
    try:
        assert all(held)
        busy = client.post("/auth/password-strength", {"password": WORST})
        assert busy.status_code == 429 and busy["Retry-After"] == "1"
    finally:
        for lock, _file in slots:
            lock.release()
    assert client.post("/auth/password-strength", {"password": WORST}).status_code == 200


def test_the_slots_are_shared_by_the_workers_of_a_node(client, db):
    import subprocess
    import sys

    paths = [handle.name for _lock, handle in passwords._slots()]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\n"
            f"files = [open(p, 'a+b') for p in {paths!r}]\n"
            "for f in files: fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"  # another worker analyses
        assert client.post("/auth/password-strength", {"password": WORST}).status_code == 429
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert client.post("/auth/password-strength", {"password": WORST}).status_code == 200


def test_an_unwritable_var_dir_never_makes_the_meter_fail(client, db, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.VAR_DIR = blocker / "var"  # cannot be created, even by root
    saved = passwords._slot_locks[:], passwords._slot_files[:]
    passwords._slot_locks.clear()
    passwords._slot_files.clear()
    try:
        assert client.post("/auth/password-strength", {"password": WORST}).status_code == 200
        assert passwords._slot_files and all(f is None for f in passwords._slot_files)
    finally:
        passwords._slot_locks[:], passwords._slot_files[:] = saved
