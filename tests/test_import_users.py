import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portail.accounts.identifiers import base_identifier
from portail.accounts.models import Profile, State, User
from portail.directory.imports.letters import csv_cell
from portail.directory.imports.region_csv import read_region_csv
from portail.directory.models import SchoolClass
from tests.helpers import login

pytestmark = pytest.mark.django_db

PUPILS = (
    "Prénom*;Nom*;Date de naissance*;Classes*\n"
    "Élodie;Dupré;14/03/2010;2nde 3\n"
    "Mary Anne;O'Connor;2/9/2009;1ère G2\n"
    "José;García;01/01/2010;2nde 3, Latin\n"
)


def run_import(
    tmp_path, content, *, encoding="utf-8", profile="eleve", name="in.csv", out="", **options
):
    source = tmp_path / name
    source.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    output = tmp_path / f"out{out}-{name}"
    said, err = io.StringIO(), io.StringIO()
    call_command(
        "import_users",
        str(source),
        structure="0751234A",
        profile=profile,
        output=str(output),
        stdout=said,
        stderr=err,
        **options,
    )
    return output, said.getvalue()


def read_letters(path):
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # BOM: Excel shows the accents right
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def rejected(tmp_path, content, any_users=False, **kwargs):
    err = io.StringIO()
    source = tmp_path / "bad.csv"
    source.write_bytes(content.encode(kwargs.pop("encoding", "utf-8")))
    with pytest.raises(CommandError) as exc:
        call_command(
            "import_users",
            str(source),
            structure="0751234A",
            profile=kwargs.pop("profile", "eleve"),
            output=str(tmp_path / "letters.csv"),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert not (tmp_path / "letters.csv").exists()
    assert any_users or User.objects.count() == 0
    assert not list(tmp_path.glob(".portail-import-*"))
    return err.getvalue(), str(exc.value)


@pytest.mark.parametrize(
    "first,last,expected",
    [
        ("Mary Anne", "O'Connor", "maryanne.oconnor"),
        ("José", "García", "jose.garcia"),
        ("Jean-Édouard", "De La Tour-d'Auvergne", "jeanedouard.delatourdauvergne"),
        (
            "A" * 40,
            "Maximilienne-Charlotte-Éléonore-Amélie",
            "a" * 30 + ".maximiliennecharlotteeleonorea",
        ),
    ],
)
def test_identifier_vectors_of_the_issue(first, last, expected):
    assert base_identifier(first, last) == expected


def test_utf8_with_bom_creates_accounts_classes_and_letters(tmp_path, school):
    output, said = run_import(tmp_path, PUPILS, encoding="utf-8-sig")
    assert "3 comptes créés" in said
    elodie = User.objects.get(identifier="elodie.dupre")
    assert (elodie.first_name, elodie.last_name, elodie.profile) == ("Élodie", "Dupré", "eleve")
    assert elodie.state == State.PENDING and not elodie.has_usable_password()
    assert list(elodie.structures.all()) == [school]
    assert [c.name for c in elodie.classes.all()] == ["2nde 3"]
    assert User.objects.filter(identifier="maryanne.oconnor").exists()
    jose = User.objects.get(identifier="jose.garcia")
    assert sorted(c.name for c in jose.classes.all()) == ["2nde 3", "Latin"]
    assert SchoolClass.objects.filter(structure=school).count() == 3

    assert output.stat().st_mode & 0o777 == 0o600  # activation codes in clear: owner only
    letters = read_letters(output)
    assert list(letters[0]) == ["Nom", "Prénom", "Classes", "Identifiant", "Code d'activation"]
    assert [(r["Nom"], r["Prénom"], r["Identifiant"]) for r in letters] == [
        ("Dupré", "Élodie", "elodie.dupre"),
        ("O'Connor", "Mary Anne", "maryanne.oconnor"),
        ("García", "José", "jose.garcia"),
    ]
    assert letters[2]["Classes"] == "2nde 3, Latin"
    assert all(len(r["Code d'activation"]) == 8 for r in letters)


def test_codes_of_the_letters_open_the_first_connection(tmp_path, school, client):
    output, _ = run_import(tmp_path, PUPILS)
    row = read_letters(output)[0]
    response = login(client, row["Identifiant"], row["Code d'activation"])
    assert response["Location"] == "/auth/activation"


def test_utf8_without_bom(tmp_path, school):
    run_import(tmp_path, PUPILS, encoding="utf-8")
    assert User.objects.filter(last_name="Dupré", first_name="Élodie").exists()


def test_iso_8859_1(tmp_path, school):
    run_import(tmp_path, PUPILS, encoding="latin-1")
    assert User.objects.filter(last_name="García", first_name="José").exists()
    assert User.objects.filter(identifier="elodie.dupre").exists()


def test_windows_1252_keeps_oe_ligature(tmp_path, school):
    content = "Prénom;Nom\nChloé;Cœurdevey\n"
    run_import(tmp_path, content, encoding="cp1252", profile="enseignant")
    user = User.objects.get(last_name="Cœurdevey")
    assert user.identifier == "chloe.curdevey" and user.profile == Profile.ENSEIGNANT


def test_headers_in_any_order_case_accents_spaces_and_extra_columns(tmp_path, school):
    content = (
        " CLASSES * ;  date DE naissance*;Numéro INE;NOM*; prenom \n"
        "2nde 3;14/03/2010;123456789AB;Dupré;Élodie\n"
    )
    output, _ = run_import(tmp_path, content)
    user = User.objects.get(identifier="elodie.dupre")
    assert (user.first_name, user.last_name) == ("Élodie", "Dupré")
    assert [c.name for c in user.classes.all()] == ["2nde 3"]


def test_existing_class_is_reused_whatever_its_case(tmp_path, school, school_class):
    output, _ = run_import(
        tmp_path, "Prénom;Nom;Date de naissance;Classes\nLéa;Roux;01/01/2010;2NDE 3\n"
    )
    assert SchoolClass.objects.filter(structure=school).count() == 1
    assert read_letters(output)[0]["Classes"] == "2nde 3"
    assert list(User.objects.get(identifier="lea.roux").classes.all()) == [school_class]


HOMONYMS = (
    "Prénom;Nom;Date de naissance;Classes\nJean;Dupont;01/01/2010;6A\nJEAN;DUPONT;02/02/2010;6A\n"
)


def test_duplicate_names_get_2_then_3(tmp_path, school, active_user):
    # active_user is jean.dupont already.
    output, _ = run_import(tmp_path, HOMONYMS)
    assert [r["Identifiant"] for r in read_letters(output)] == ["jean.dupont2", "jean.dupont3"]


def test_duplicate_names_within_the_file(tmp_path, school):
    output, _ = run_import(tmp_path, HOMONYMS)
    assert [r["Identifiant"] for r in read_letters(output)] == ["jean.dupont", "jean.dupont2"]


def test_the_same_person_twice_in_the_file_is_a_bad_row(tmp_path, school):
    # Same names, no birth date, no Id: nothing tells them apart, so it is the same person.
    errors, _ = rejected(tmp_path, "Prénom;Nom\nJean;Dupont\nJean;Dupont\n", profile="enseignant")
    assert errors.strip() == "Ligne 3 (Jean Dupont) : Cette personne figure déjà à la ligne 2."


def test_long_names_are_cut_at_30_characters_per_part(tmp_path, school):
    content = "Prénom;Nom\nMarie-Bernadette-Antoinette-Joséphine;Dupont\n"
    output, _ = run_import(tmp_path, content, profile="enseignant")
    assert read_letters(output)[0]["Identifiant"] == "mariebernadetteantoinettejosep.dupont"


def test_parents_need_no_birth_date_nor_class_but_their_child(tmp_path, school):
    run_import(tmp_path, PUPILS)
    content = "Nom;Prénom;Nom de l'élève;Prénom de l'élève;Classes de l'élève\n"
    run_import(tmp_path, content + "Martin;Sophie;Dupré;Élodie;2nde 3\n", profile="parent", out=2)
    user = User.objects.get(identifier="sophie.martin")
    assert user.profile == Profile.PARENT and not user.classes.exists()
    assert user.child_links.get().child.identifier == "elodie.dupre"
    errors, _ = rejected(tmp_path, "Nom;Prénom\nMartin;Paul\n", profile="parent", any_users=True)
    assert errors.strip() == "Ligne 2 (Paul Martin) : aucun élève indiqué pour ce responsable."


def test_bad_rows_import_nothing_and_each_is_named_with_its_line(tmp_path, school):
    content = (
        "Prénom*;Nom*;Date de naissance*;Classes*\n"
        "Élodie;Dupré;14/03/2010;2nde 3\n"  # line 2: fine
        "Lucas;;14/03/2010;2nde 3\n"  # line 3: no last name
        "\n"  # line 4: blank, skipped
        "Inès;Benali;31/02/2010;1ère G2\n"  # line 5: no such date
        "Paul;Roy;2010-03-14;\n"  # line 6: ISO date and no class
        ";Petit;01/01/2010;2nde 3\n"  # line 7: no first name
        "Zoé;Faure;01/01/2099;2nde 3\n"  # line 8: born in the future
        "李;Wang;01/01/2010;2nde 3\n"  # line 9: nothing usable in the first name
    )
    errors, summary = rejected(tmp_path, content)
    lines = errors.strip().splitlines()
    # The directory's reader (the console's): ISO dates are accepted there.
    assert lines == [
        "Ligne 3 (Lucas) : Nom manquant.",
        "Ligne 5 (Inès Benali) : Date de naissance invalide « 31/02/2010 » (attendu : JJ/MM/AAAA).",
        "Ligne 6 (Paul Roy) : Classes manquantes.",
        "Ligne 7 (Petit) : Prénom manquant.",
        "Ligne 8 (Zoé Faure) : Date de naissance invalide « 01/01/2099 » (attendu : JJ/MM/AAAA).",
        "Ligne 9 (李 Wang) : Impossible de former un identifiant : le nom ou le prénom ne contient aucune lettre latine.",
    ]
    assert "Aucun compte n'a été créé ni modifié : 6 lignes en erreur" in summary
    assert not SchoolClass.objects.exists()


def test_missing_required_column_is_refused(tmp_path, school):
    _, summary = rejected(tmp_path, "Prénom;Nom;Classes\nJean;Dupont;2nde 3\n")
    assert "Colonnes obligatoires absentes : Date de naissance." in summary
    assert "Aucun compte n'a été créé ni modifié." in summary


def test_comma_separated_file_is_read_too(tmp_path, school):
    # The directory's reader (the console's) recognises ";", "," and tab separators.
    run_import(tmp_path, "Prénom,Nom\nJean,Dupont\n", profile="enseignant")
    assert User.objects.filter(identifier="jean.dupont").exists()


def test_row_with_too_many_cells_is_refused(tmp_path, school):
    errors, _ = rejected(tmp_path, "Prénom;Nom\nJean;Dupont;de trop\n", profile="enseignant")
    assert errors.startswith("Ligne 2 (Jean Dupont) : la ligne a 3 colonnes")


def test_unclosed_quote_is_refused(tmp_path, school):
    _, summary = rejected(tmp_path, 'Prénom;Nom\nJean;"Dupont\n', profile="enseignant")
    assert "guillemet" in summary


def test_file_without_people_is_refused(tmp_path, school):
    _, summary = rejected(tmp_path, "Prénom;Nom\n\n", profile="enseignant")
    assert "aucune personne" in summary


def test_formula_cells_are_escaped_in_the_letters(tmp_path, school):
    content = 'Prénom;Nom\n=HYPERLINK("http://evil.example");Dupont\n+Jean;-Martin\n@Anne;Roy\n'
    output, _ = run_import(tmp_path, content, profile="enseignant")
    rows = read_letters(output)
    assert rows[0]["Prénom"] == '\'=HYPERLINK("http://evil.example")'
    assert (rows[1]["Prénom"], rows[1]["Nom"]) == ("'+Jean", "'-Martin")
    assert rows[2]["Prénom"] == "'@Anne"
    # The account keeps the name as given; only the spreadsheet cell is defused.
    assert User.objects.filter(first_name="+Jean").exists()


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+33", "'+33"),
        ("-2", "'-2"),
        ("@SUM", "'@SUM"),
        ("\t=x", "'\t=x"),
        ("Jean", "Jean"),
        ("", ""),
    ],
)
def test_csv_cell_escaping(value, expected):
    assert csv_cell(value) == expected


def test_existing_output_is_never_overwritten(tmp_path, school):
    (tmp_path / "letters.csv").write_text("codes d'une importation précédente")
    source = tmp_path / "in.csv"
    source.write_text("Prénom;Nom\nJean;Dupont\n")
    with pytest.raises(CommandError, match="existe déjà"):
        call_command(
            "import_users",
            str(source),
            structure="0751234A",
            profile="parent",
            output=str(tmp_path / "letters.csv"),
        )
    assert (tmp_path / "letters.csv").read_text() == "codes d'une importation précédente"
    assert not User.objects.exists()


def test_unknown_structure_and_profile_are_refused_in_french(tmp_path, school):
    source = tmp_path / "in.csv"
    source.write_text("Prénom;Nom\nJean;Dupont\n")
    with pytest.raises(CommandError, match="Établissement inconnu : 0999999Z"):
        call_command(
            "import_users",
            str(source),
            structure="0999999Z",
            profile="parent",
            output=str(tmp_path / "o.csv"),
        )
    with pytest.raises(CommandError, match="Profil « prof » inconnu"):
        call_command(
            "import_users",
            str(source),
            structure="0751234A",
            profile="prof",
            output=str(tmp_path / "o.csv"),
        )
    assert not User.objects.exists()


def test_the_reader_is_usable_without_the_command(school):
    records, report = read_region_csv(
        PUPILS.encode("utf-8-sig"), structure=school, profile=Profile.ELEVE
    )
    assert report.rejected == []
    assert [(r.row, r.first_name, sorted(n for _s, n in r.classes)) for r in records] == [
        (2, "Élodie", ["2nde 3"]),
        (3, "Mary Anne", ["1ère G2"]),
        (4, "José", ["2nde 3", "Latin"]),
    ]
    assert records[1].birth_date.isoformat() == "2009-09-02"


def test_a_rerun_updates_instead_of_duplicating(tmp_path, school):
    _, said = run_import(tmp_path, PUPILS)
    elodie = User.objects.get(identifier="elodie.dupre")
    code_digests = set(elodie.tokens.values_list("digest", flat=True))
    moved = PUPILS.replace("Élodie;Dupré;14/03/2010;2nde 3", "Élodie;Dupré;14/03/2010;1ère G2")
    output, said = run_import(tmp_path, moved, out=2)
    assert "0 compte créé" in said and "1 mis à jour, 2 inchangé(s)" in said
    assert User.objects.count() == 3
    assert read_letters(output) == []  # no new account, no new code
    elodie.refresh_from_db()
    assert [c.name for c in elodie.classes.all()] == ["1ère G2"]
    assert set(elodie.tokens.values_list("digest", flat=True)) == code_digests


def test_full_rerun_marks_the_absent_leaving(tmp_path, school):
    run_import(tmp_path, PUPILS)
    without_jose = "\n".join(PUPILS.splitlines()[:3]) + "\n"
    _, said = run_import(tmp_path, without_jose, out=2, full=True)
    assert "1 sortant(s)" in said
    assert list(
        User.objects.filter(leaving_since__isnull=False).values_list("identifier", flat=True)
    ) == ["jose.garcia"]


def test_dry_run_changes_nothing_and_writes_no_codes(tmp_path, school):
    source = tmp_path / "in.csv"
    source.write_text(PUPILS)
    said = io.StringIO()
    call_command(
        "import_users",
        str(source),
        structure="0751234A",
        profile="eleve",
        dry_run=True,
        stdout=said,
    )
    assert "3 comptes créés" in said.getvalue() and "rien n'a été enregistré" in said.getvalue()
    assert not User.objects.exists() and list(tmp_path.iterdir()) == [source]
