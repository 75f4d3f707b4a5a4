"""The region's CSV templates: every profile, charsets, repeated columns, links, bad rows."""

import pytest

from portail.accounts.models import Profile, State, Token, User
from portail.directory.imports.region_csv import import_region_csv
from portail.directory.imports.report import ImportFileError
from portail.directory.models import Group, Relationship, SchoolClass, Structure
from portail.security import tokens

PUPILS = (
    "Prénom*;Nom*;Date de naissance*;Classes*;Id;INE;Niveau;Groupes;Courriel\n"
    "Élodie;Dupré;03/04/2010;2nde 3;E1;1234567890A;2NDE GENERALE;Latin, Euro;\n"
    "Jean;Dupont;12/09/2009;2nde 3;E2;;;;\n"
    "Jean;Dupont;01/01/2010;2nde 4;E3;;;;jean.d@example.org\n"
)


@pytest.fixture
def lycee(db):
    return Structure.objects.create(uai="0771234A", name="Lycée Van Dongen")


def _import(data, lycee, profile=Profile.ELEVE, **kw):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return import_region_csv(data, structure=lycee, profile=profile, **kw)


def test_pupils_are_created_with_identifiers_codes_classes_and_groups(lycee):
    report = _import(PUPILS, lycee)
    assert report.rejected == []
    assert [a.identifier for a in report.created] == ["elodie.dupre", "jean.dupont", "jean.dupont2"]
    elodie = User.objects.get(identifier="elodie.dupre")
    assert elodie.state == State.PENDING
    assert not elodie.has_usable_password()
    assert str(elodie.birth_date) == "2010-04-03"
    assert elodie.ine == "1234567890A"
    assert (elodie.external_source, elodie.external_id) == ("csv:0771234A", "E1")
    assert list(elodie.structures.all()) == [lycee]
    assert [c.name for c in elodie.classes.all()] == ["2nde 3"]
    assert SchoolClass.objects.get(structure=lycee, name="2nde 3").level == "2NDE GENERALE"
    assert sorted(g.name for g in elodie.teaching_groups.all()) == ["Euro", "Latin"]
    assert Group.objects.filter(structure=lycee).count() == 2
    # The printed code opens the account: only its keyed digest is stored.
    code = report.created[0].activation_code
    token = Token.objects.get(user=elodie)
    assert tokens.matches(Token.Purpose.ACTIVATION, code, token.digest)
    assert code not in token.digest
    assert User.objects.get(identifier="jean.dupont2").email == "jean.d@example.org"


def test_identifiers_continue_after_existing_accounts(lycee):
    User.objects.create_user(
        "jean.dupont", None, first_name="Jean", last_name="Dupont", profile=Profile.PARENT
    )
    User.objects.create_user(
        "jean.dupont7", None, first_name="Jean", last_name="Dupont", profile=Profile.PARENT
    )
    User.objects.create_user(
        "jean.dupontel", None, first_name="Jean", last_name="Dupontel", profile=Profile.PARENT
    )
    report = _import(PUPILS, lycee)
    assert [a.identifier for a in report.created][1:] == ["jean.dupont2", "jean.dupont3"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "iso-8859-1", "cp1252"])
def test_charsets_are_read(lycee, encoding):
    report = _import(PUPILS.encode(encoding), lycee)
    assert report.rejected == []
    assert User.objects.get(identifier="elodie.dupre").first_name == "Élodie"


def test_headers_match_without_case_accents_spaces_apostrophes_or_stars(lycee):
    data = "PRENOM;  nom ;DATE DE NAISSANCE;classes*\nLéa;Martin;01/02/2011;6A\n"
    report = _import(data, lycee)
    assert [a.identifier for a in report.created] == ["lea.martin"]


def test_reimport_is_idempotent_and_updates_names_and_classes(lycee):
    first = _import(PUPILS, lycee)
    elodie = User.objects.get(identifier="elodie.dupre")
    elodie.email = "elodie@example.org"
    elodie.set_password("cheval orange batterie agrafe")
    elodie.state = State.ACTIVE
    elodie.save()
    again = _import(PUPILS, lycee)
    assert again.created == [] and again.updated == 0 and again.unchanged == 3
    changed = PUPILS.replace(
        "Élodie;Dupré;03/04/2010;2nde 3", "Élodie;Dupré-Moreau;03/04/2010;1re 2"
    )
    third = _import(changed, lycee)
    assert third.created == [] and third.updated == 1
    elodie.refresh_from_db()
    assert elodie.last_name == "Dupré-Moreau"
    assert elodie.identifier == "elodie.dupre"  # never changes on import
    assert elodie.email == "elodie@example.org"
    assert elodie.check_password("cheval orange batterie agrafe")
    assert [c.name for c in elodie.classes.all()] == ["1re 2"]
    assert User.objects.count() == len(first.created)


def test_reimport_without_id_matches_on_names_and_birth_date(lycee):
    data = (
        "Prénom;Nom;Date de naissance;Classes\nLéa;Martin;01/02/2011;6A\nLéa;Martin;05/05/2011;6B\n"
    )
    _import(data, lycee)
    report = _import(data.replace("6A", "6C"), lycee)
    assert report.created == [] and report.updated == 1
    assert User.objects.filter(last_name="Martin").count() == 2
    assert User.objects.get(birth_date="2011-02-01").classes.get().name == "6C"


def test_bad_rows_are_rejected_with_line_and_reason_others_imported(lycee):
    data = (
        "Prénom;Nom;Date de naissance;Classes;Courriel\n"
        "Léa;Martin;01/02/2011;6A;\n"
        ";Sans;01/02/2011;6A;\n"
        "Paul;Date;31/02/2011;6A;\n"
        "Zoé;Mail;01/02/2011;6A;pas-une-adresse\n"
        "Léa;Martin;01/02/2011;6A;\n"
    )
    report = _import(data, lycee)
    assert [a.identifier for a in report.created] == ["lea.martin"]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "Prénom manquant" in reasons[3]
    assert "Date de naissance invalide « 31/02/2011 »" in reasons[4]
    assert "Adresse de messagerie invalide" in reasons[5]
    assert "figure déjà à la ligne 2" in reasons[6]
    assert "ligne 4 (Paul Date)" in report.summary()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "vide"),
        (b"Nom;Prenom\nA;B\n", "Colonnes obligatoires absentes : Date de naissance, Classes"),
        (b"\x00\x01\x02PK\x03\x04", "n'est pas un fichier texte"),
    ],
)
def test_unreadable_file_changes_nothing(lycee, data, message):
    with pytest.raises(ImportFileError, match=message):
        _import(data, lycee)
    assert User.objects.count() == 0
    assert SchoolClass.objects.count() == 0


def test_dry_run_reports_without_saving(lycee):
    report = _import(PUPILS, lycee, dry_run=True)
    assert len(report.created) == 3 and report.dry_run
    assert User.objects.count() == 0
    assert [a.identifier for a in report.created] == ["elodie.dupre", "jean.dupont", "jean.dupont2"]
    assert {a.activation_code for a in report.created} == {""}


TEACHERS = (
    "Prénom*;Nom*;date de naissance;fonction;telephone;telephonetravail;email;adresse;cp;ville;"
    "pays;classe;classe;classe\n"
    "Marie;Curie;;Professeur;;;marie.curie@example.org;;;;;2nde 3;2nde 4;\n"
    "Louis;Pasteur;01/01/1970;CPE;;;;;;;;;;\n"
)


@pytest.mark.parametrize("profile", [Profile.ENSEIGNANT, Profile.PERSONNEL])
def test_staff_template_reads_repeated_classe_columns(lycee, profile):
    report = _import(TEACHERS, lycee, profile=profile)
    assert report.rejected == []
    marie = User.objects.get(identifier="marie.curie")
    assert marie.profile == profile
    assert sorted(c.name for c in marie.classes.all()) == ["2nde 3", "2nde 4"]
    again = _import(TEACHERS, lycee, profile=profile)  # no birth date: names within the school
    assert again.created == [] and again.unchanged == 2


def test_teacher_in_two_structures_keeps_both(lycee):
    other = Structure.objects.create(uai="0772222B", name="Collège Jean Moulin")
    _import(TEACHERS, lycee, profile=Profile.ENSEIGNANT)
    # A school's CSV finds only its own members: the second school knows her already (AAF, or
    # the console), else its CSV would create a separate account (see the takeover tests).
    User.objects.get(identifier="marie.curie").structures.add(other)
    _import(TEACHERS.replace("2nde 3;2nde 4", "3e A;"), other, profile=Profile.ENSEIGNANT)
    marie = User.objects.get(identifier="marie.curie")
    assert set(marie.structures.all()) == {lycee, other}
    assert sorted(c.name for c in marie.classes.all()) == ["2nde 3", "2nde 4", "3e A"]


PARENTS = (
    "Nom*;Prénom*;Adresse;Code postal;Ville;Pays;Courriel;Téléphone;"
    "Nom de l'élève;Prénom de l'élève;Classes de l'élève;"
    "Nom de l'élève;Prénom de l'élève;Classes de l'élève\n"
    "Dupont;Marc;1 rue;77000;Melun;France;marc@example.org;0612345678;"
    "Dupont;Jean;2nde 3;Dupont;Jean;2nde 4\n"
    "Dupré;Anne;;;;;;;DUPRE;elodie;2nde 3;;;\n"
    "Inconnu;Paul;;;;;;;Personne;Nul;6A;;;\n"
    "Dupont;Homonyme;;;;;;;Dupont;Jean;;;;\n"
)


def test_parents_are_linked_to_children_by_names_and_class(lycee):
    _import(PUPILS, lycee)
    report = _import(PARENTS, lycee, profile=Profile.PARENT)
    marc = User.objects.get(identifier="marc.dupont")
    assert marc.profile == Profile.PARENT
    children = {link.child.identifier for link in marc.child_links.all()}
    assert children == {"jean.dupont", "jean.dupont2"}
    anne = User.objects.get(identifier="anne.dupre")
    assert [link.child.identifier for link in anne.child_links.all()] == ["elodie.dupre"]
    reasons = {r.row: r.reason for r in report.rejected}
    assert "élève introuvable : Nul Personne en 6A" in reasons[4]
    assert "plusieurs élèves Jean Dupont" in reasons[5]
    assert report.links_created == 3
    again = _import(PARENTS, lycee, profile=Profile.PARENT)
    assert again.created == [] and again.links_created == 0
    assert Relationship.objects.count() == 3


def test_parent_link_by_child_id(lycee):
    _import(PUPILS, lycee)
    data = (
        "Nom;Prénom;Nom de l'élève;Prénom de l'élève;Classes de l'élève;Id de l'élève\nX;Y;;;;E3\n"
    )
    report = _import(data, lycee, profile=Profile.PARENT)
    assert report.rejected == []
    assert User.objects.get(identifier="y.x").child_links.get().child.identifier == "jean.dupont2"


def test_a_parent_with_children_in_two_schools(lycee):
    college = Structure.objects.create(uai="0773333C", name="Collège")
    _import(PUPILS, lycee)
    _import("Prénom;Nom;Date de naissance;Classes\nLuc;Dupont;01/01/2013;6A\n", college)
    _import(
        PARENTS.split("\n")[0] + "\n" + PARENTS.split("\n")[1] + "\n", lycee, profile=Profile.PARENT
    )
    header = "Nom;Prénom;Courriel;Nom de l'élève;Prénom de l'élève;Classes de l'élève\n"
    # Same names, no email: maybe another Marc Dupont; never merged across schools by names.
    _import(header + "Dupont;Marc;;Dupont;Luc;6A\n", college, profile=Profile.PARENT)
    assert User.objects.filter(first_name="Marc").count() == 2
    User.objects.filter(first_name="Marc", structures=college).delete()
    # Same names and the same email: still not merged by the college's own CSV (an email is no
    # proof, the lycée's parent is not the college's to claim): a separate account.
    _import(
        header + "Dupont;Marc;marc@example.org;Dupont;Luc;6A\n", college, profile=Profile.PARENT
    )
    assert User.objects.filter(first_name="Marc").count() == 2
    lycee_marc = User.objects.get(first_name="Marc", structures=lycee)
    assert list(lycee_marc.structures.all()) == [lycee]
    # Once the college knows him (AAF, or the console), its CSV updates that one account.
    User.objects.filter(first_name="Marc", structures=college).delete()
    lycee_marc.structures.add(college)
    _import(
        header + "Dupont;Marc;marc@example.org;Dupont;Luc;6A\n", college, profile=Profile.PARENT
    )
    marc = User.objects.get(first_name="Marc")
    assert {link.child.first_name for link in marc.child_links.all()} == {"Jean", "Luc"}
    assert set(marc.structures.all()) == {lycee, college}


def test_identifier_taken_meanwhile_takes_the_next(lycee, monkeypatch):
    """Another import (or the console) takes jean.dupont between our query and our insert."""
    from portail.directory.imports import engine

    real = engine.taken_identifiers_for
    calls = []

    def stale_then_real(bases):
        calls.append(bases)
        if len(calls) == 1:
            User.objects.create_user(
                "lea.martin", None, first_name="Léa", last_name="Martin", profile=Profile.PARENT
            )
            return {base: set() for base in bases}
        return real(bases)

    monkeypatch.setattr(engine, "taken_identifiers_for", stale_then_real)
    report = _import("Prénom;Nom;Date de naissance;Classes\nLéa;Martin;01/02/2011;6A\n", lycee)
    assert [a.identifier for a in report.created] == ["lea.martin2"]
    assert len(calls) == 2


def test_full_csv_marks_absent_pupils_of_the_school_leaving(lycee):
    _import(PUPILS, lycee)
    lines = PUPILS.splitlines()
    # Elodie absent; Jean (E2) listed with a bad date: rejected but still there.
    data = "\n".join([lines[0], lines[2].replace("12/09/2009", "99/99/2009"), lines[3]]) + "\n"
    report = _import(data, lycee, full=True)
    assert report.left == 1 and len(report.rejected) == 1
    assert list(
        User.objects.filter(leaving_since__isnull=False).values_list("identifier", flat=True)
    ) == ["elodie.dupre"]
    back = _import(PUPILS, lycee, full=True)
    assert back.left == 0 and back.updated == 1
    assert not User.objects.filter(leaving_since__isnull=False).exists()


NO_ID = (
    "Prénom*;Nom*;Date de naissance*;Classes*\n"
    "Élodie;Dupré;03/04/2010;2nde 3\n"
    "Jean;Dupont;12/09/2009;2nde 3\n"
    "Léa;Martin;01/02/2010;2nde 4\n"
)


def test_full_csv_without_id_column_marks_absent_pupils_leaving(lycee):
    _import(NO_ID, lycee)
    assert set(User.objects.values_list("external_source", flat=True)) == {"csv:0771234A"}
    lines = NO_ID.splitlines()
    # Élodie absent; Jean listed with a bad date: rejected, known by his names only, stays.
    data = "\n".join([lines[0], lines[2].replace("12/09/2009", "99/99/2009"), lines[3]]) + "\n"
    report = _import(data, lycee, full=True)
    assert report.left == 1 and len(report.rejected) == 1 and report.created == []
    assert list(
        User.objects.filter(leaving_since__isnull=False).values_list("identifier", flat=True)
    ) == ["elodie.dupre"]


def test_account_created_before_sources_were_recorded_is_adopted_by_the_school_csv(lycee):
    _import(NO_ID, lycee)
    User.objects.update(external_source="")  # as the imports before this fix left them
    _import(NO_ID, lycee)
    assert User.objects.count() == 3
    assert set(User.objects.values_list("external_source", flat=True)) == {"csv:0771234A"}
    report = _import("\n".join(NO_ID.splitlines()[:3]) + "\n", lycee, full=True)
    assert report.left == 1


# --- A school's CSV never reaches another school's people ------------------------------------


@pytest.fixture
def college(db):
    return Structure.objects.create(uai="0773333C", name="Collège Jean Moulin")


def _b_pupil(college):
    """School B's pupil, imported by B with its Id, with a pending activation code."""
    data = "Prénom;Nom;Date de naissance;Classes;Id\nÉlodie;Dupré;03/04/2010;6A;B-77\n"
    report = _import(data, college)
    pupil = User.objects.get(identifier="elodie.dupre")
    digest = Token.objects.get(user=pupil).digest
    return pupil, report.created[0].activation_code, digest


@pytest.mark.parametrize("id_cell", ["", "A-1", "B-77"])
def test_school_a_csv_cannot_take_over_school_b_pupil(lycee, college, id_cell):
    pupil, code, digest = _b_pupil(college)
    attack = f"Prénom;Nom;Date de naissance;Classes;Id\nÉlodie;Dupré;03/04/2010;2nde 3;{id_cell}\n"
    preview = _import(attack, lycee, dry_run=True)
    report = _import(attack, lycee, full=True)
    for r in (preview, report):
        # The same answer as if B's pupil did not exist: one new account, nothing else.
        assert (r.updated, r.unchanged, r.left, r.rejected, r.warnings) == (0, 0, 0, [], [])
        assert [a.identifier for a in r.created] == ["elodie.dupre2"]
    assert report.created[0].user_id != pupil.pk
    pupil.refresh_from_db()
    assert list(pupil.structures.all()) == [college]
    assert [c.name for c in pupil.classes.all()] == ["6A"]
    assert (pupil.external_source, pupil.external_id) == ("csv:0773333C", "B-77")
    token = Token.objects.get(user=pupil)
    assert token.digest == digest and tokens.matches(Token.Purpose.ACTIVATION, code, token.digest)
    twin = User.objects.get(identifier="elodie.dupre2")
    assert list(twin.structures.all()) == [lycee]
    assert twin.external_source == "csv:0771234A"


def test_school_a_parent_csv_cannot_take_over_school_b_parent_by_email(lycee, college):
    _import("Prénom;Nom;Date de naissance;Classes\nLuc;Dupont;01/01/2013;6A\n", college)
    _import("Prénom;Nom;Date de naissance;Classes\nJean;Dupont;12/09/2009;2nde 3\n", lycee)
    header = "Nom;Prénom;Courriel;Nom de l'élève;Prénom de l'élève;Classes de l'élève\n"
    _import(header + "Dupont;Marc;marc@example.org;Dupont;Luc;6A\n", college, profile="parent")
    b_parent = User.objects.get(first_name="Marc")
    report = _import(
        header + "Dupont;Marc;marc@example.org;Dupont;Jean;2nde 3\n", lycee, profile="parent"
    )
    assert report.updated == 0 and [a.identifier for a in report.created] == ["marc.dupont2"]
    assert list(b_parent.structures.all()) == [college]
    assert {link.child.first_name for link in b_parent.child_links.all()} == {"Luc"}


def test_school_csv_never_replaces_an_external_id_of_another_source(lycee, tmp_path):
    # The académie's pupil, known in the lycée: the lycée's CSV updates her classes but the
    # AAF's jointure stays (the next AAF import must find her again by it).
    pupil = User.objects.create_user(
        "elodie.dupre", None, first_name="Élodie", last_name="Dupré", profile=Profile.ELEVE
    )
    pupil.birth_date = "2010-04-03"
    pupil.external_source, pupil.external_id = "aaf", "J-123"
    pupil.save()
    pupil.structures.add(lycee)
    report = _import(PUPILS, lycee)
    assert report.updated == 1
    pupil.refresh_from_db()
    assert (pupil.external_source, pupil.external_id) == ("aaf", "J-123")
    assert [c.name for c in pupil.classes.all()] == ["2nde 3"]
