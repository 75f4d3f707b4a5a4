"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, on a free port.

Fixtures (registered in tests/conftest.py):

* `smtp_server` (session): the running server; `.port`, `.messages`.
* `smtp` (function): points Django's SMTP backend at that server for the test and returns it, its
  mailbox emptied. Each received message is parsed with the `email` stdlib (policy.default):

      def test_x(client, smtp, transactional_db):
          ...
          mail = smtp.only(to="jean.dupont@example.org")
          assert "réinitialisation" in mail.subject
          link = mail.links(prefix="https://ent.example.test/auth/reset/")[0]

Portail queues mail and only the workers talk to the relay (portail/mail/queue.py). Under the
`smtp` fixture, reading the server (`messages`, `only`, `sent_to`, `clear`) first runs one worker
pass in the test's thread, as `portail send-mail --loop` would have done by then. The queued rows
must be visible to it: use `transactional_db`, or `django_db(transaction=True)`.

Misbehaving relays for the queue's tests: `SMTPServer(behaviour=...)` with "accept" (default),
"refuse" (550 to DATA), "defer" (451 to DATA), "late" (keeps the message, answers 250 after
`late_seconds`), and `HangingServer`, which accepts connections and never says a word.
"""

import asyncio
import email
import re
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from portail.typography import normalised

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class ReceivedMail:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return normalised(str(self.message["Subject"]))

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def text(self) -> str:
        """The plain-text body as tests compare it: NBSPs and ’ read as spaces and '
        (portail.typography.normalise); `raw_text` is the body as sent."""
        return normalised(self.raw_text)

    @property
    def raw_text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""

    def links(self, prefix: str = "") -> list[str]:
        """The URLs of the plain-text body that start with `prefix`, in order."""
        return [url for url in _URL.findall(self.text) if url.startswith(prefix)]


class _Recorder:
    """The aiosmtpd handler: keeps every message the server accepted (or will answer late)."""

    def __init__(self, behaviour="accept", late_seconds=3.0):
        self.messages: list[ReceivedMail] = []
        self.lock = threading.Lock()
        self.behaviour = behaviour
        self.late_seconds = late_seconds
        self.refused = 0
        self.peers: list = []  # the client's (address, port) of each DATA: one per connection
        self.on_data = None  # called (blocking) when DATA arrives, before the answer

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self.lock:
            self.peers.append(session.peer)
        if self.on_data is not None:
            self.on_data()
        if self.behaviour == "refuse":
            with self.lock:
                self.refused += 1
            return "550 5.7.1 Message refused"
        if self.behaviour == "defer":
            with self.lock:
                self.refused += 1
            return "451 4.3.0 Try again later"
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        if self.behaviour == "late":  # taken, but the 250 comes after the client gave up
            await asyncio.sleep(self.late_seconds)
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self, behaviour="accept", late_seconds=3.0):
        self.host = "127.0.0.1"
        self.port = _free_port(self.host)
        self._recorder = _Recorder(behaviour, late_seconds)
        self._controller = Controller(self._recorder, hostname=self.host, port=self.port)
        self.before_read = None  # set by the `smtp` fixture: one worker pass before each read

    @property
    def behaviour(self) -> str:
        return self._recorder.behaviour

    @behaviour.setter
    def behaviour(self, value: str):
        self._recorder.behaviour = value

    def on_data(self, callback):
        """Run `callback` when the next messages arrive, before the server answers them."""
        self._recorder.on_data = callback

    @property
    def refused(self) -> int:
        return self._recorder.refused

    def peers(self) -> set:
        """The distinct client connections that sent DATA."""
        with self._recorder.lock:
            return set(self._recorder.peers)

    def message_ids(self) -> list[str]:
        """The Message-ID of each message received, duplicates included."""
        with self._recorder.lock:
            return [str(m.message["Message-ID"]) for m in self._recorder.messages]

    def _drain(self):
        if self.before_read is not None:
            self.before_read()

    def start(self):
        self._controller.start()

    def stop(self):
        self._controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every message received since the last clear(), oldest first.

        Django's SMTP backend returns only once the server has accepted DATA, and the handler
        stores the message before it answers: once the worker pass returns, the mail is here.
        """
        self._drain()
        with self._recorder.lock:
            return list(self._recorder.messages)

    @property
    def received(self) -> list[ReceivedMail]:
        """What the server has received so far, without running a worker pass first: what the
        requests themselves delivered."""
        with self._recorder.lock:
            return list(self._recorder.messages)

    def clear(self):
        self._drain()
        with self._recorder.lock:
            self._recorder.messages.clear()

    def sent_to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    def only(self, to: str | None = None) -> ReceivedMail:
        """The one message received (for `to`); fails if there are none or several."""
        found = self.sent_to(to) if to else self.messages
        assert len(found) == 1, f"expected one message{' to ' + to if to else ''}, got {found!r}"
        return found[0]


class HangingServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (not even the SMTP greeting)."""

    def __init__(self):
        self.host = "127.0.0.1"
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((self.host, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:  # closed by stop()
                return
            self.connections.append(conn)  # held open, never read, never answered

    def stop(self):
        self._sock.close()
        for conn in self.connections:
            conn.close()


def point_django_at(settings, server):
    """Django's SMTP backend, aimed at `server`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False


def _worker_pass():
    from portail.mail.services import deliver_due

    deliver_due(limit=None)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_server():
    server = SMTPServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, settings):
    """The test's SMTP server, empty, with Django's email settings pointing at it, and a worker
    pass before each read of it (what `send-mail --loop` would have sent by then)."""
    point_django_at(settings, smtp_server)
    smtp_server._recorder.messages.clear()
    smtp_server.before_read = _worker_pass
    yield smtp_server
    smtp_server.before_read = None
    smtp_server._recorder.messages.clear()
