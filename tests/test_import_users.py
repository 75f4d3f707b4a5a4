import csv
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portail.accounts.identifiers import base_identifier
from portail.accounts.models import Profile, State, User
from portail.directory import csv_import
from portail.directory.models import SchoolClass
from tests.helpers import login

pytestmark = pytest.mark.django_db

PUPILS = (
    "Prénom*;Nom*;Date de naissance*;Classes*\n"
    "Élodie;Dupré;14/03/2010;2nde 3\n"
    "Mary Anne;O'Connor;2/9/2009;1ère G2\n"
    "José;García;01/01/2010;2nde 3, Latin\n"
)


def run_import(tmp_path, content, *, encoding="utf-8", profile="eleve", name="in.csv"):
    source = tmp_path / name
    source.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    output = tmp_path / f"out-{name}"
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "import_users",
        str(source),
        structure="0751234A",
        profile=profile,
        output=str(output),
        stdout=out,
        stderr=err,
    )
    return output, out.getvalue()


def read_letters(path):
    raw = path.read_bytes()
    assert raw.startswith("\ufeff".encode())  # BOM: Excel shows the accents right
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))


def rejected(tmp_path, content, **kwargs):
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
    assert User.objects.count() == 0
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
    run_import(tmp_path, content, encoding="cp1252", profile="parent")
    user = User.objects.get(last_name="Cœurdevey")
    assert user.identifier == "chloe.curdevey" and user.profile == Profile.PARENT


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


def test_duplicate_names_get_2_then_3(tmp_path, school, active_user):
    # active_user is jean.dupont already.
    content = "Prénom;Nom\nJean;Dupont\nJEAN;DUPONT\n"
    output, _ = run_import(tmp_path, content, profile="parent")
    assert [r["Identifiant"] for r in read_letters(output)] == ["jean.dupont2", "jean.dupont3"]


def test_duplicate_names_within_the_file(tmp_path, school):
    output, _ = run_import(tmp_path, "Prénom;Nom\nJean;Dupont\nJean;Dupont\n", profile="parent")
    assert [r["Identifiant"] for r in read_letters(output)] == ["jean.dupont", "jean.dupont2"]


def test_long_names_are_cut_at_30_characters_per_part(tmp_path, school):
    content = "Prénom;Nom\nMarie-Bernadette-Antoinette-Joséphine;Dupont\n"
    output, _ = run_import(tmp_path, content, profile="enseignant")
    assert read_letters(output)[0]["Identifiant"] == "mariebernadetteantoinettejosep.dupont"


def test_parents_need_no_birth_date_nor_class(tmp_path, school):
    run_import(tmp_path, "Nom;Prénom\nMartin;Sophie\n", profile="parent")
    user = User.objects.get(identifier="sophie.martin")
    assert user.profile == Profile.PARENT and not user.classes.exists()


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
    assert lines == [
        "Ligne 3 : le nom est vide.",
        "Ligne 5 : la date de naissance « 31/02/2010 » n'existe pas.",
        "Ligne 6 : la date de naissance « 2010-03-14 » n'est pas au format jj/mm/aaaa ; la classe est vide.",
        "Ligne 7 : le prénom est vide.",
        "Ligne 8 : la date de naissance « 01/01/2099 » est dans le futur.",
        "Ligne 9 : le prénom « 李 » ne contient aucune lettre utilisable pour l'identifiant (a à z sans accent, chiffres).",
    ]
    assert "Aucun compte n'a été créé : 6 lignes en erreur" in summary
    assert not SchoolClass.objects.exists()


def test_missing_required_column_is_line_1(tmp_path, school):
    errors, _ = rejected(tmp_path, "Prénom;Nom;Classes\nJean;Dupont;2nde 3\n")
    assert errors.strip() == "Ligne 1 : colonne obligatoire absente : « Date de naissance »."


def test_comma_separated_file_gets_a_hint(tmp_path, school):
    errors, _ = rejected(tmp_path, "Prénom,Nom\nJean,Dupont\n", profile="parent")
    assert "séparées par des points-virgules" in errors


def test_row_with_too_many_cells_is_refused(tmp_path, school):
    errors, _ = rejected(tmp_path, "Prénom;Nom\nJean;Dupont;de trop\n", profile="parent")
    assert errors.startswith("Ligne 2 : la ligne a 3 colonnes")


def test_unclosed_quote_is_refused(tmp_path, school):
    errors, _ = rejected(tmp_path, 'Prénom;Nom\nJean;"Dupont\n', profile="parent")
    assert "guillemet" in errors


def test_file_without_people_is_refused(tmp_path, school):
    errors, _ = rejected(tmp_path, "Prénom;Nom\n\n", profile="parent")
    assert "aucune personne" in errors


def test_formula_cells_are_escaped_in_the_letters(tmp_path, school):
    content = 'Prénom;Nom\n=HYPERLINK("http://evil.example");Dupont\n+Jean;-Martin\n@Anne;Roy\n'
    output, _ = run_import(tmp_path, content, profile="parent")
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
    assert csv_import.csv_cell(value) == expected


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


def test_parse_people_is_usable_without_the_command():
    rows = csv_import.parse_people(PUPILS.encode("utf-8-sig"), Profile.ELEVE)
    assert [(r.line, r.first_name, r.classes) for r in rows] == [
        (2, "Élodie", ["2nde 3"]),
        (3, "Mary Anne", ["1ère G2"]),
        (4, "José", ["2nde 3", "Latin"]),
    ]
    assert rows[1].birth_date.isoformat() == "2009-09-02"
