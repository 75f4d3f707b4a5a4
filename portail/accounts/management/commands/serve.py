"""`portail serve`: the production server.

gunicorn manages one process per core; each runs uvicorn (asyncio) with Django's ASGI handler behind
Portail's admission control (portail/ops/admission.py): a slow client costs a coroutine, not a
worker; oversized bodies get 413 before being read; logins, activations, recoveries and token
requests wait in a bounded per-process lane and get 503 + Retry-After once they have waited longer
than PORTAIL_EXPENSIVE_QUEUE_MS. The stack and its measurements: portail/ops/serving.py, README.md.
"""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from portail.ops import metrics
from portail.ops.serving import build_application, default_workers, gunicorn_options

from ._errors import Erreur

DEFAULT_BIND = "127.0.0.1:8000"  # behind the reverse proxy that terminates TLS


class Command(BaseCommand):
    help = "Sert Portail en production : gunicorn et uvicorn, un processus par cœur par défaut."

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
        # /metrics counts every worker: prometheus_client's multiprocess files, prepared in the
        # master before forking (the operator's PROMETHEUS_MULTIPROC_DIR if set, else a temp dir).
        operator_dir = os.environ.get(metrics.MULTIPROC_ENV)
        metrics_dir = metrics.prepare_multiprocess_dir()
        options = gunicorn_options(bind, workers)
        options["child_exit"] = metrics.worker_exited
        try:
            build_application(options).run()
        finally:
            if not operator_dir:
                metrics.cleanup_multiprocess_dir(metrics_dir)
