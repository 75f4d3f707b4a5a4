"""Import benchmark: a synthetic AAF feed of N pupils into PostgreSQL, first import and re-import.

    python bench/import.py [--pupils 100000] [--existing 20000] [--keep-db]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/portail_bench_import (its own database:
other benchmarks use portail_bench); the database is dropped,
created and migrated (unless --keep-db). Before the first import, --existing accounts with the
same name pool are inserted, so identifier generation must resolve duplicates against them.
Prints accounts per second; the goal (issue 3 §4) is >= 5,000/s for both runs. A third run
imports the same pupils a year on (10% in another class, 1% renamed): the update path.
"""

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402


def _words(text):
    return text.split()


FIRST_NAMES = _words(
    "Lucas Léo Gabriel Raphaël Arthur Louis Jules Adam Maël Hugo Noah Paul Nathan Tom Sacha "
    "Mohamed Théo Ethan Aaron Liam Noé Timéo Eden Nolan Mathis Marius Axel Victor Rayan Enzo "
    "Jade Louise Emma Alice Ambre Lina Rose Chloé Mia Léa Anna Mila Julia Inès Léna Agathe "
    "Juliette Lou Zoé Manon Camille Sarah Lola Jeanne Eva Romane Nina Louna Iris Margaux Éléonore "
    "Maëlys Clémence Héloïse Anaïs Célia Gaëlle Noémie Océane Pénélope Ophélie Anne-Sophie "
    "Jean-Baptiste Marie-Ève François Zélie"
)
LAST_NAMES = _words(
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel "
    "Lefèvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine "
    "Rousseau Vincent Muller Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier "
    "François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu "
    "Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun "
    "Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche "
    "Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud "
    "Dumas Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq "
    "Guillaume Lecomte López Jean Dupuy Guillot Hubert Berger Carpentier Sanchez Dupuis Moulin "
    "Louis Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Paris Poirier "
    "Marty Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly "
    "Hervé Schneider Fernandez Le-Gall Collet Léger Bouvier Julien Prévost Millet Perrot Daniel "
    "Le-Roux Cousin Germain Breton Besson Langlois Rémy Le-Goff Pelletier Lévêque Perrier "
    "Leblanc Barré Lebrun Marchal Weber Mallet Hamon Boulanger Jacob Monnier Michaud Rodriguez "
    "Guichard Gillet Étienne Grondin Poulain Tessier Chevallier Collin Chauvin Da-Silva Bouchet "
    "Gay Lemaître Benard Maréchal Humbert Reynaud Antoine Hoarau Perret Barthélémy Cordier "
    "Pichon Lejeune Gilbert Lamy Delaunay Pasquier Carlier Laporte N'Diaye O'Connor"
)

PUPIL = (
    '<addRequest><operationalAttributes><attr name="categoriePersonne"><value>Eleve</value>'
    "</attr></operationalAttributes><identifier><id>{j}</id></identifier><attributes>"
    '<attr name="ENTPersonJointure"><value>{j}</value></attr>'
    '<attr name="sn"><value>{last}</value></attr>'
    '<attr name="givenName"><value>{first}</value></attr>'
    '<attr name="ENTPersonDateNaissance"><value>{birth}</value></attr>'
    '<attr name="ENTPersonStructRattach"><value>{s}</value></attr>'
    '<attr name="ENTEleveClasses"><value>{s}${klass}</value></attr>'
    '<attr name="ENTEleveNivFormation"><value>{level}</value></attr>'
    '<attr name="ENTEleveGroupes"><value>{s}${group}</value></attr>'
    '<attr name="ENTEleveRegime"><value>DP DAN</value></attr>'
    '<attr name="ENTEleveStatutEleve"><value>SCOLAIRE</value></attr>'
    "</attributes></addRequest>\n"
)
ETAB = (
    "<addRequest><identifier><id>{s}</id></identifier><attributes>"
    '<attr name="ENTStructureJointure"><value>{s}</value></attr>'
    '<attr name="ENTStructureUAI"><value>{uai}</value></attr>'
    '<attr name="ENTStructureNomCourant"><value>LYCEE NUMERO {n}</value></attr>'
    '<attr name="ENTStructureTypeStruct"><value>LYC</value></attr>'
    "</attributes></addRequest>\n"
)
LEVELS = ("2NDE", "1ERE", "TERM")


def generate(directory: Path, pupils: int, seed=77, moved=False):
    """The feed; moved=True: the same people a year on (every 10th pupil in another class,
    every 100th renamed)."""
    rnd = random.Random(seed)
    schools = max(1, pupils // 1000)
    with open(directory / "BENCH_Complet_20260901_EtabEducNat_0000.xml", "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n')
        for n in range(schools):
            f.write(ETAB.format(s=f"S{n}", uai=f"07{n:05d}X", n=n))
        f.write("</ficAlimMENESR>\n")
    per_file = 50_000
    for part in range(0, pupils, per_file):
        path = directory / f"BENCH_Complet_20260901_Eleve_{part // per_file:04d}.xml"
        with open(path, "w") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n')
            for i in range(part, min(pupils, part + per_file)):
                level = LEVELS[rnd.randrange(3)]
                last = rnd.choice(LAST_NAMES).upper()
                if moved and i % 100 == 0:
                    last += "-MARTIN"
                if moved and i % 10 == 0:
                    level = LEVELS[(LEVELS.index(level) + 1) % 3]
                f.write(
                    PUPIL.format(
                        j=f"J{i:07d}",
                        last=last,
                        first=rnd.choice(FIRST_NAMES),
                        birth=f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{rnd.randint(2007, 2011)}",
                        s=f"S{i % schools}",
                        klass=f"{level} {rnd.randint(1, 12)}",
                        level=level,
                        group=f"LV2 {rnd.choice(('ESP', 'ALL', 'ITA'))}",
                    )
                )
            f.write("</ficAlimMENESR>\n")


def insert_existing(count: int, seed=1):
    """Accounts already in the directory (another source), from the same name pool."""
    from portail.accounts.identifiers import base_identifier
    from portail.accounts.models import Profile, User
    from portail.directory.imports.engine import IdentifierAllocator

    rnd = random.Random(seed)
    allocator = IdentifierAllocator({})
    users = []
    for i in range(count):
        first, last = rnd.choice(FIRST_NAMES), rnd.choice(LAST_NAMES)
        users.append(
            User(
                identifier=allocator.allocate(base_identifier(first, last)),
                password="!bench",
                first_name=first,
                last_name=last,
                profile=Profile.PARENT,
                external_source="csv:bench",
                external_id=f"X{i}",
            )
        )
    User.objects.bulk_create(users, batch_size=5000)


def _backend_pid():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _own_cpu():
    """CPU seconds of this process and of its finished children (the parsing workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pupils", type=int, default=100_000)
    parser.add_argument("--existing", type=int, default=20_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--phases", action="store_true", help="print each phase's duration")
    parser.add_argument("--workers", type=int, default=1, help="files parsed in parallel processes")
    args = parser.parse_args()

    url = s.in_process_settings("portail_bench_import")
    if not args.keep_db:
        s.recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from portail.accounts.models import User
    from portail.directory.imports.aaf import import_aaf

    if args.phases:
        logging.basicConfig(format="    %(message)s")
        logging.getLogger("portail.directory.imports").setLevel(logging.DEBUG)
    call_command("migrate", verbosity=0)
    if args.existing and not args.keep_db:
        insert_existing(args.existing)

    with tempfile.TemporaryDirectory(prefix="portail-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        generate(directory, args.pupils)
        size = sum(p.stat().st_size for p in directory.iterdir()) / 1e6
        print(
            f"feed: {args.pupils} pupils, {size:.0f} MB, generated in "
            f"{time.perf_counter() - started:.1f} s; {User.objects.count()} accounts already there"
        )
        backend = _backend_pid()
        for label in ("first import", "re-import", "moved"):
            if label == "moved":
                for path in directory.iterdir():
                    path.unlink()
                generate(directory, args.pupils, moved=True)
            started, cpu, db_cpu = time.perf_counter(), _own_cpu(), s.process_cpu(backend)
            report = import_aaf(directory, workers=args.workers)
            elapsed = time.perf_counter() - started
            cpu, db_cpu = _own_cpu() - cpu, s.process_cpu(backend) - db_cpu
            print(
                f"{label:12}: {elapsed:6.1f} s, {args.pupils / elapsed:7.0f} accounts/s "
                f"(created {report.created_count}, updated {report.updated}, "
                f"unchanged {report.unchanged}, rejected {len(report.rejected)}); "
                f"CPU used: Python {cpu:.1f} s (with parsing workers), PostgreSQL backend "
                f"{db_cpu:.1f} s; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    homonyms = User.objects.filter(identifier__regex=r"[0-9]$", profile="eleve").count()
    print(f"pupils with a numbered identifier (homonyms): {homonyms}")


if __name__ == "__main__":
    main()
