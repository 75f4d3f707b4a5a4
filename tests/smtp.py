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

Portail delivers mail once the transaction commits (portail.mail.services), so a test that waits
for a message at the server needs real commits: use `transactional_db`, or
`django_db(transaction=True)`; under the plain `db` fixture nothing would ever be sent.
"""

import email
import re
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

_URL = re.compile(r"https?://[^\s<>\"']+")


@dataclass
class ReceivedMail:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def text(self) -> str:
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
    """The aiosmtpd handler: keeps every message the server accepted."""

    def __init__(self):
        self.messages: list[ReceivedMail] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.host = "127.0.0.1"
        self.port = _free_port(self.host)
        self._recorder = _Recorder()
        self._controller = Controller(self._recorder, hostname=self.host, port=self.port)

    def start(self):
        self._controller.start()

    def stop(self):
        self._controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every message received since the last clear(), oldest first.

        Django's SMTP backend returns only once the server has accepted DATA, and the handler
        stores the message before it answers: after a request returns, its mail is here.
        """
        with self._recorder.lock:
            return list(self._recorder.messages)

    def clear(self):
        with self._recorder.lock:
            self._recorder.messages.clear()

    def sent_to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m.recipients)]

    def only(self, to: str | None = None) -> ReceivedMail:
        """The one message received (for `to`); fails if there are none or several."""
        found = self.sent_to(to) if to else self.messages
        assert len(found) == 1, f"expected one message{' to ' + to if to else ''}, got {found!r}"
        return found[0]


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
    """The test's SMTP server, empty, with Django's email settings pointing at it."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()
