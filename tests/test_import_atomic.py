"""An import killed at any moment leaves nothing, or the accounts plus a complete letters file.

`portail import-users` runs as a real process on a PostgreSQL database of its own and is killed
with SIGKILL at named points (the `PORTAIL_IMPORT_TEST_PAUSE` hook of
portail.directory.imports.pending): inside the transaction just before COMMIT, just after
COMMIT, with the letters written but not yet named, and with the file named but the sealed
rows not yet erased. After each kill no file with codes is left but a complete letters file; the
same command run again writes the letters of every account still waiting.
"""

import csv
import io
import signal
import subprocess
from pathlib import Path

import pytest

from tests import servers
from tests.servers import POSTGRES_URL

pytestmark = pytest.mark.postgres

PUPILS = 300  # several sealed chunks would need more; one run is enough to show the unit


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    servers.require("postgres")
    import psycopg

    with servers.postgres_database("portail_opsdeploy_kill") as dbname:
        env = servers.portail_env(
            tmp_path_factory.mktemp("var"),
            DATABASE_URL=f"{POSTGRES_URL}/{dbname}",
            PORTAIL_BASE_URL="https://127.0.0.1",
        )
        servers.manage(env, "migrate", "-v0")
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            yield {"env": env, "db": conn}


def portail(portal, *args, pause=None):
    """Run `portail ARGS`; with `pause`, SIGKILL it once it reaches that point."""
    if pause is None:
        result = servers.manage(portal["env"], *args, check=False)
        return result.returncode, result.stdout + result.stderr
    proc = subprocess.Popen(
        servers.portail_command(*args),
        env={**portal["env"], "PORTAIL_IMPORT_TEST_PAUSE": pause},
        cwd=servers.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if line.strip() == f"pause:{pause}":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"never reached {pause}"
    return proc.returncode, ""


def school(portal, uai):
    code, said = portail(portal, "add-structure", "--uai", uai, "--name", f"Lycée {uai}")
    assert code == 0, said


def pupils_file(folder: Path, tag: str, count=PUPILS) -> Path:
    source = folder / "eleves.csv"
    rows = ["Prénom*;Nom*;Date de naissance*;Classes*"]
    rows += [f"Élève{i};{tag}{i:05d};01/09/2010;2nde {i % 7}" for i in range(count)]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return source


def import_users(portal, source, uai, output, pause=None):
    return portail(
        portal,
        "import-users",
        str(source),
        "--structure",
        uai,
        "--profile",
        "eleve",
        "--output",
        str(output),
        pause=pause,
    )


def waiting_identifiers(portal, uai) -> set[str]:
    rows = portal["db"].execute(
        """SELECT u.identifier FROM accounts_user u
           JOIN accounts_user_structures m ON m.user_id = u.id
           JOIN directory_structure s ON s.id = m.structure_id
           WHERE s.uai = %s AND u.state = 'pending'""",
        [uai],
    )
    return {identifier for (identifier,) in rows}


def letters(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig")), delimiter=";"))


def pending_rows(portal) -> int:
    return portal["db"].execute("SELECT count(*) FROM directory_pendingletters").fetchone()[0]


def assert_complete(path: Path, portal, uai):
    rows = letters(path)
    assert {r["Identifiant"] for r in rows} == waiting_identifiers(portal, uai)
    assert len(rows) == PUPILS and all(len(r["Code d'activation"]) >= 8 for r in rows)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "point, committed",
    [("before-commit", False), ("after-commit", True), ("letters-written", True)],
)
def test_killed_import_leaves_nothing_or_accounts_and_then_letters(
    portal, tmp_path, point, committed
):
    uai = {"before-commit": "0000001A", "after-commit": "0000002B", "letters-written": "0000003C"}[
        point
    ]
    school(portal, uai)
    source = pupils_file(tmp_path, point.replace("-", "").capitalize())
    output = tmp_path / "courriers.csv"

    import_users(portal, source, uai, output, pause=point)

    # Killed: no letters file, and no file at all holding codes (only the input is there).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eleves.csv"]
    assert len(waiting_identifiers(portal, uai)) == (PUPILS if committed else 0)
    # Committed accounts have their codes sealed in the database, never in clear.
    assert (pending_rows(portal) > 0) == committed
    for (sealed,) in portal["db"].execute("SELECT sealed FROM directory_pendingletters"):
        assert sealed.startswith("gcm1:") and "Élève" not in sealed and "bench" not in sealed

    # The same command again: the letters of every account still waiting, and nothing else left.
    code, said = import_users(portal, source, uai, output)
    assert code == 0, said
    assert_complete(output, portal, uai)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["courriers.csv", "eleves.csv"]
    assert pending_rows(portal) == 0


def test_killed_after_the_file_is_named_keeps_the_complete_file(portal, tmp_path):
    uai = "0000004D"
    school(portal, uai)
    source = pupils_file(tmp_path, "Linked")
    output = tmp_path / "courriers.csv"

    import_users(portal, source, uai, output, pause="letters-linked")
    assert_complete(output, portal, uai)  # the link is atomic: the file is whole
    assert pending_rows(portal) > 0

    # A re-run erases the sealed copy and, as always, refuses to overwrite the letters.
    code, said = import_users(portal, source, uai, output)
    assert code != 0 and "existe déjà" in said
    assert pending_rows(portal) == 0
    assert_complete(output, portal, uai)


def test_another_import_finishes_the_letters_an_interrupted_one_owed(portal, tmp_path):
    uai, other = "0000005E", "0000006F"
    school(portal, uai)
    school(portal, other)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    output = first / "courriers.csv"
    import_users(portal, pupils_file(first, "Owed"), uai, output, pause="after-commit")
    assert not output.exists()

    # An import of another school writes the owed letters to their own file first.
    code, said = import_users(portal, pupils_file(second, "Other"), other, second / "c.csv")
    assert code == 0, said
    assert "Importation interrompue" in said
    assert_complete(output, portal, uai)
    assert_complete(second / "c.csv", portal, other)
    assert pending_rows(portal) == 0


def test_an_account_activated_meanwhile_gets_no_letter(portal, tmp_path):
    uai = "0000007G"
    school(portal, uai)
    source = pupils_file(tmp_path, "Meanwhile")
    output = tmp_path / "courriers.csv"
    import_users(portal, source, uai, output, pause="after-commit")
    activated = sorted(waiting_identifiers(portal, uai))[0]
    portal["db"].execute(
        "UPDATE accounts_user SET state = 'active' WHERE identifier = %s", [activated]
    )

    code, said = import_users(portal, source, uai, output)
    assert code == 0, said
    names = {r["Identifiant"] for r in letters(output)}
    assert activated not in names and names == waiting_identifiers(portal, uai)


def test_killed_aaf_import_writes_its_letters_on_the_next_run(portal, tmp_path):
    from tests.directory import aaf_feed as feed

    export = tmp_path / "aaf"
    feed.write(export, "EtabEducNat", [feed.structure("900", "0000008H", "LYCEE AAF", "LYC")])
    feed.write(
        export,
        "Eleve",
        [
            feed.pupil(f"K{i}", "Élève", f"AAF{i:03d}", "03/04/2010", "900", "2NDE1", [])
            for i in range(40)
        ],
    )
    output = tmp_path / "codes.csv"
    args = ("import-aaf", str(export), "--output", str(output))
    portail(portal, *args, pause="after-commit")
    assert not output.exists() and pending_rows(portal) > 0

    code, said = portail(portal, *args)
    assert code == 0, said
    rows = list(csv.DictReader(io.StringIO(output.read_text("utf-8")), delimiter=";"))
    assert {r["Identifiant"] for r in rows} == waiting_identifiers(portal, "0000008H")
    assert len(rows) == 40 and rows[0]["Profil"]
    assert pending_rows(portal) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aaf", "codes.csv"]
