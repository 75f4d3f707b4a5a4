import io
import os
import urllib.request

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portail.accounts.management.commands import serve
from portail.directory.models import Structure
from tests import servers

# --- add-structure ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_structure_creates_then_renames_without_duplicating():
    out = io.StringIO()
    call_command("add_structure", uai="0751234A", name="Lycée Claude Monet", stdout=out)
    assert "Établissement créé : Lycée Claude Monet (0751234A)" in out.getvalue()
    out = io.StringIO()
    call_command("add_structure", uai="0751234a", name="  Lycée  Claude-Monet ", stdout=out)
    assert "Établissement mis à jour : Lycée Claude-Monet (0751234A)" in out.getvalue()
    assert list(Structure.objects.values_list("uai", "name")) == [
        ("0751234A", "Lycée Claude-Monet")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("uai", ["075123A", "07512345A", "ABCDEFGH", "0751234", "0751234É"])
def test_add_structure_refuses_a_bad_uai_in_french(uai):
    with pytest.raises(CommandError, match="7 chiffres suivis d'une lettre majuscule"):
        call_command("add_structure", uai=uai, name="Lycée")
    assert not Structure.objects.exists()


@pytest.mark.django_db
def test_add_structure_refuses_an_empty_name():
    with pytest.raises(CommandError, match="nom de l'établissement est vide"):
        call_command("add_structure", uai="0751234A", name="   ")
    assert not Structure.objects.exists()


# --- serve -----------------------------------------------------------------------------------


def test_serve_defaults_to_one_worker_per_core(monkeypatch):
    started = {}

    class Recorder:
        def __init__(self, options):
            started.update(options)

        def run(self):
            started["ran"] = True

    monkeypatch.setattr(serve, "build_application", Recorder)
    call_command("serve", "--no-collectstatic", stdout=io.StringIO())
    assert started["workers"] == (os.cpu_count() or 1)
    assert started["bind"] == ["127.0.0.1:8000"] and started["ran"]
    call_command(
        "serve",
        "--no-collectstatic",
        "--bind",
        "0.0.0.0:9000",
        "--workers",
        "3",
        stdout=io.StringIO(),
    )
    assert started["workers"] == 3 and started["bind"] == ["0.0.0.0:9000"]


@pytest.mark.parametrize(
    "args,message", [(["--workers", "0"], "au moins 1"), (["--bind", "localhost"], "HOTE:PORT")]
)
def test_serve_refuses_bad_options_in_french(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("serve", "--no-collectstatic", *args, stdout=io.StringIO())


# --- the `portail` console script, in real processes -----------------------------------------


@pytest.fixture(scope="module")
def portail_env(tmp_path_factory):
    """A migrated SQLite database in a temporary directory, as `make run` would have."""
    var = tmp_path_factory.mktemp("portail-var")
    env = servers.portail_env(
        var, PORTAIL_DEBUG="1", DATABASE_URL=f"sqlite:///{var / 'portail.sqlite3'}"
    )
    portail(env, "migrate", "--noinput", "-v", "0")
    return env


def portail(env, *args, check=True):
    return servers.manage(env, *args, check=check)


def test_portail_entry_runs_add_structure_and_import_users_with_dashes(portail_env, tmp_path):
    result = portail(
        portail_env, "add-structure", "--uai", "0751234A", "--name", "Lycée Claude Monet"
    )
    assert "Établissement créé" in result.stdout
    source = tmp_path / "eleves.csv"
    source.write_bytes(
        "Prénom*;Nom*;Date de naissance*;Classes*\nJosé;García;01/01/2010;2nde 3\n".encode(
            "latin-1"
        )
    )
    letters = tmp_path / "courriers.csv"
    result = portail(
        portail_env,
        "import-users",
        str(source),
        "--structure",
        "0751234A",
        "--profile",
        "eleve",
        "--output",
        str(letters),
    )
    assert "1 compte créé" in result.stdout
    assert "jose.garcia" in letters.read_text(encoding="utf-8-sig")

    bad = tmp_path / "mauvais.csv"
    bad.write_text("Prénom;Nom\n;Dupont\n", encoding="utf-8")
    result = portail(
        portail_env,
        "import-users",
        str(bad),
        "--structure",
        "0751234A",
        "--profile",
        "parent",
        "--output",
        str(tmp_path / "x.csv"),
        check=False,
    )
    assert result.returncode != 0
    # The shared import engine names the row and the person, then every reason.
    assert "Ligne 2 (Dupont) : Prénom manquant" in result.stderr
    assert "Erreur: Aucun compte n'a été créé" in result.stderr
    assert "Traceback" not in result.stderr


def test_portail_serve_answers_with_gunicorn_and_uvicorn(portail_env, tmp_path):
    port = servers.free_port()
    # Production settings (DEBUG off): collectstatic must run first for the hashed static names.
    env = {
        **portail_env,
        "PORTAIL_DEBUG": "0",
        "PORTAIL_BASE_URL": f"http://127.0.0.1:{port}",  # plain HTTP: no redirect to https
    }
    server = servers.PortailServer(env, tmp_path / "serve.log", port=port)
    try:
        server.start()
        with urllib.request.urlopen(server.url("/auth/login"), timeout=5) as r:  # noqa: S310 (loopback)
            status, body, software = r.status, r.read().decode(), r.headers.get("Server", "")
        assert status == 200 and "Connexion" in body
        assert "uvicorn" in software.lower()  # gunicorn manages uvicorn workers
        css = body.split('href="/static/portail/css/', 1)[1].split('"', 1)[0]
        assert css != "portail.css"  # hashed name: collectstatic ran
        with urllib.request.urlopen(server.url(f"/static/portail/css/{css}")) as r:  # noqa: S310
            assert r.status == 200
    finally:
        server.stop()
        output = server.log_text()
        print(output)  # shown by pytest when the test fails
    assert "Portail écoute sur" in output
    assert "Traceback" not in output
