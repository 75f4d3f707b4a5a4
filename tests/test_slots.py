"""The node's Argon2id places (portail/ops/slots.py): shared by processes, given back by the dead.

Behaviour only: who waits for whom, and what a dead worker leaves. No timings are asserted; where
a thread must be seen waiting, it is given a generous moment and must not have got through.
"""

import multiprocessing
import os
import threading

import pytest
from django.contrib.auth.hashers import check_password, make_password

from portail.accounts.hashers import PortailArgon2PasswordHasher
from portail.accounts.management.commands.serve import worker_exited
from portail.ops import slots

# While a place is held elsewhere, a waiter must still be waiting after this long.
STILL_WAITING = 0.3


@pytest.fixture
def node():
    """The node's places as `portail serve` prepares them, here with one place."""
    prepared = slots.prepare(1)
    yield prepared
    slots.prepare(0)


def in_thread(function):
    done = threading.Event()
    result = {}

    def run():
        result["value"] = function()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, result


@pytest.mark.django_db
def test_an_argon2_verification_waits_for_the_nodes_place(node):
    """With the project's PASSWORD_HASHERS: the hasher Django verifies an argon2 hash with."""
    encoded = make_password("cheval orange batterie agrafe")
    assert encoded.startswith("argon2$argon2id$")
    with slots.held():
        done, result = in_thread(lambda: check_password("cheval orange batterie agrafe", encoded))
        assert not done.wait(STILL_WAITING)  # the one place is taken: it waits
    assert done.wait(30) and result["value"] is True


def test_hashing_a_new_password_waits_too(node):
    hasher = PortailArgon2PasswordHasher()
    with slots.held():
        done, result = in_thread(lambda: hasher.encode("un mot de passe", hasher.salt()))
        assert not done.wait(STILL_WAITING)
    assert done.wait(30) and result["value"].startswith("argon2$argon2id$")


def test_without_places_nothing_waits():
    slots.prepare(0)
    with slots.held(), slots.held():  # nested: would block with a place
        pass
    assert slots.worker_exited(os.getpid()) == 0


def test_places_are_shared_with_forked_processes(node):
    """A worker forked after prepare() takes the same places as its siblings."""
    context = multiprocessing.get_context("fork")
    holding, leave = context.Event(), context.Event()

    def worker():
        with slots.held():
            holding.set()
            leave.wait(30)

    child = context.Process(target=worker)
    child.start()
    try:
        assert holding.wait(30)
        assert not node.semaphore.acquire(timeout=STILL_WAITING)  # the child holds the place
        leave.set()
        child.join(30)
        assert node.semaphore.acquire(timeout=30)  # given back when it left normally
        node.semaphore.release()
    finally:
        leave.set()
        child.join(30)


def test_a_dead_workers_place_is_given_back_by_the_master(node):
    """A worker killed while hashing would keep its place for ever: the master's child_exit
    hook gives it back."""
    context = multiprocessing.get_context("fork")
    holding = context.Event()

    def worker():
        with slots.held():
            holding.set()
            os._exit(1)  # dies holding the place: no finally, no release

    child = context.Process(target=worker)
    child.start()
    assert holding.wait(30)
    child.join(30)
    assert not node.semaphore.acquire(timeout=STILL_WAITING)  # lost until the master acts

    class DeadWorker:
        pid = child.pid

    worker_exited(None, DeadWorker())
    assert node.semaphore.acquire(timeout=30)
    node.semaphore.release()
    assert slots.worker_exited(child.pid) == 0  # given back once, not twice


def test_a_lost_place_delays_a_login_but_does_not_fail_it(node, monkeypatch):
    """Last guard: places lost without a master to give them back (no child_exit) make a
    computation wait SLOT_WAIT_SECONDS, then run without a place, counted."""
    monkeypatch.setattr(slots, "SLOT_WAIT_SECONDS", 0.2)
    node.semaphore.acquire()  # lost for good
    before = slots.SLOT_TIMEOUTS._value.get()
    try:
        hasher = PortailArgon2PasswordHasher()
        encoded = hasher.encode("un mot de passe", hasher.salt())
        assert hasher.verify("un mot de passe", encoded)
        assert slots.SLOT_TIMEOUTS._value.get() == before + 2
    finally:
        node.semaphore.release()
