"""`portail serve`: the production server, gunicorn running portail.wsgi, one worker per core."""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from ._errors import Erreur

DEFAULT_BIND = "127.0.0.1:8000"  # behind the reverse proxy that terminates TLS


def default_workers() -> int:
    # Portail's requests are short and CPU-bound (Argon2): one worker per core.
    return os.cpu_count() or 1


def gunicorn_options(bind: str, workers: int) -> dict:
    return {
        "bind": [bind],
        "workers": workers,
        "accesslog": "-",
        "errorlog": "-",
        # Argon2 with OWASP's parameters takes tens of ms; 30 s only catches a stuck worker.
        "timeout": 30,
        "graceful_timeout": 20,
        "proc_name": "portail",
        # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
        # two instances on a host would take each other's. Signals still manage the server.
        "control_socket_disable": True,
    }


def build_application(options: dict):
    from gunicorn.app.base import BaseApplication

    class PortailApplication(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            from portail.wsgi import application

            return application

    return PortailApplication()


class Command(BaseCommand):
    help = "Sert Portail en production avec gunicorn (un processus par cœur par défaut)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--bind",
            default=DEFAULT_BIND,
            help=f"adresse HOTE:PORT d'écoute (défaut : {DEFAULT_BIND})",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="nombre de processus (défaut : le nombre de cœurs)",
        )
        parser.add_argument(
            "--no-collectstatic",
            action="store_true",
            help="ne pas rassembler les fichiers statiques avant de démarrer",
        )

    def handle(self, *args, bind, workers, no_collectstatic, **options):
        workers = default_workers() if workers is None else workers
        if workers < 1:
            raise Erreur("--workers doit valoir au moins 1.")
        host, sep, port = bind.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise Erreur(f"--bind attend HOTE:PORT, par exemple {DEFAULT_BIND} (reçu « {bind} »).")
        if not no_collectstatic:
            call_command("collectstatic", interactive=False, verbosity=0)
        # Workers are forked: none may inherit the master's database connection.
        connections.close_all()
        self.stdout.write(f"Portail écoute sur http://{bind} avec {workers} processus.")
        self.stdout.flush()
        build_application(gunicorn_options(bind, workers)).run()
