"""The node's Argon2id places: at most one computation per core, whichever process runs it.

Why. `portail serve` runs one process per core, each with its own lane for expensive requests
(portail/ops/admission.py). Connections are not spread evenly over the processes: the kernel wakes
every process on the shared listening socket and the first awake accepts all that are waiting
(uvloop accepts in a loop), and keep-alive connections (nginx's upstream pool, a browser's) stay
where they landed. Measured (bench/login.py's wrk, 6 keep-alive connections, 2 processes on 2
cores): in about one run in three one process got every connection, the other none, and the
portal served half its capacity with a core idle (37 logins/s against 70), answering 503 at the
queue deadline while half the machine did nothing. UV_TCP_SINGLE_ACCEPT did not prevent it.

What. Each process may run PORTAIL_EXPENSIVE_CONCURRENCY expensive requests at once (2 by default),
and the Argon2id computation itself — the ~20 ms of CPU that is a login's cost — waits for one
of the node's PORTAIL_ARGON2_SLOTS places (one per core by default), a semaphore shared by the
processes of one `portail serve` (made in the master before it forks). So a process that holds
every connection still keeps every core busy (Argon2 releases the GIL), and processes that share
the work never run more Argon2 computations than there are cores (which thrash the caches:
measured, 4 at once on 2 cores served fewer logins than 2). The rest of a request (Python,
database round trips) overlaps with the others' Argon2.

A worker that dies holding a place (killed mid-computation) would take it away for good: each
place taken is noted against the process id in shared memory, and the master gives back a dead
worker's places (gunicorn's child_exit hook, `worker_exited`). As a last guard, a computation that
waited SLOT_WAIT_SECONDS for a place runs without one (counted).

Without `prepare()` (tests, `make run`, management commands) nothing is gated.
"""

import contextlib
import multiprocessing
import os

from prometheus_client import Counter

# A place is normally free within one or two Argon2id computations (~20 ms each): a wait this long
# means places were lost, and the computation goes ahead rather than fail the login.
SLOT_WAIT_SECONDS = 1.0
# Worker processes noted at once (a process's entry is freed when it holds no place).
_HOLDER_ENTRIES = 256

SLOT_TIMEOUTS = Counter(
    "portail_argon2_slot_timeouts",
    "Argon2id computations that found no free place of the node in time and ran anyway",
)


class NodeSlots:
    def __init__(self, count: int):
        context = multiprocessing.get_context("fork")
        self.count = count
        self.semaphore = context.BoundedSemaphore(count)
        # (pid, places held) pairs; its lock serialises the notes.
        self.holders = context.Array("i", 2 * _HOLDER_ENTRIES)

    @contextlib.contextmanager
    def held(self, timeout: float | None = None):
        taken = self.semaphore.acquire(timeout=SLOT_WAIT_SECONDS if timeout is None else timeout)
        if taken:
            self._note(os.getpid(), +1)
        else:
            SLOT_TIMEOUTS.inc()
        try:
            yield
        finally:
            if taken:
                self._note(os.getpid(), -1)
                self.semaphore.release()

    def _note(self, pid: int, delta: int) -> None:
        with self.holders.get_lock():
            entries = self.holders
            free = None
            for index in range(0, len(entries), 2):
                if entries[index] == pid:
                    entries[index + 1] += delta
                    if entries[index + 1] <= 0:
                        entries[index] = entries[index + 1] = 0
                    return
                if free is None and entries[index] == 0:
                    free = index
            if delta > 0 and free is not None:
                entries[free], entries[free + 1] = pid, delta
            # No free entry (more than _HOLDER_ENTRIES processes holding at once): the place is
            # not noted, and would not be given back if this process died holding it.

    def release_for(self, pid: int) -> int:
        """Give back the places a dead process held; how many."""
        with self.holders.get_lock():
            entries = self.holders
            for index in range(0, len(entries), 2):
                if entries[index] == pid:
                    held = entries[index + 1]
                    entries[index] = entries[index + 1] = 0
                    break
            else:
                return 0
        for _ in range(held):
            with contextlib.suppress(ValueError):  # never more than `count`
                self.semaphore.release()
        return held


_node: NodeSlots | None = None


def prepare(count: int) -> NodeSlots | None:
    """In `portail serve`'s master, before the workers fork: the node's places (0: none)."""
    global _node
    _node = NodeSlots(count) if count > 0 else None
    return _node


def held():
    """Around one Argon2id computation: waits for a place of the node when there are places."""
    return _node.held() if _node is not None else contextlib.nullcontext()


def worker_exited(pid: int) -> int:
    """gunicorn's child_exit (in the master): the dead worker's places are given back."""
    return _node.release_for(pid) if _node is not None else 0
