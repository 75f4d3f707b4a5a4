"""The AAF full export, built by the test: structures, accounts, classes, links, leavers."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portail.accounts.models import Profile, State, User
from portail.directory.imports.aaf import import_aaf
from portail.directory.imports.report import ImportFileError
from portail.directory.models import Relationship, SchoolClass, Structure, StructureKind

from . import aaf_feed as feed


def build(tmp_path, *, pupils=None, parents=None, teachers=None, structures=None):
    feed.write(
        tmp_path,
        "EtabEducNat",
        structures
        or [
            feed.structure("100", "0771234A", "LYCEE VAN DONGEN", "LYC"),
            feed.structure("200", "0775678B", "COLLEGE JEAN MOULIN", "CLG"),
        ],
    )
    feed.write(
        tmp_path,
        "Eleve",
        pupils
        or [
            feed.pupil("E1", "Élodie", "DUPRÉ", "03/04/2010", "100", "2NDE3", ["P1"], ["LATIN"]),
            feed.pupil("E2", "Jean", "DUPONT", "12/09/2009", "100", "2NDE3", ["P2"]),
            feed.pupil("E3", "Jean", "DUPONT", "01/01/2013", "200", "6A", ["P2"]),
        ],
    )
    feed.write(
        tmp_path,
        "PersRelEleve",
        parents
        or [
            feed.parent("P1", "Anne", "DUPRÉ", mail="anne@example.org"),
            feed.parent("P2", "Marc", "DUPONT"),
        ],
    )
    feed.write(
        tmp_path,
        "PersEducNat",
        teachers
        or [
            feed.teacher("T1", "Marie", "CURIE", ["100", "200"], ["100$2NDE3", "200$6A"]),
            feed.teacher("T2", "Louis", "PASTEUR", ["100"], teaches=False),
        ],
    )
    return tmp_path


def test_full_feed_creates_structures_accounts_classes_and_links(db, tmp_path):
    report = import_aaf(build(tmp_path))
    assert report.rejected == []
    assert report.structures_created == 2
    lycee = Structure.objects.get(uai="0771234A")
    assert (lycee.name, lycee.kind, lycee.external_id) == (
        "LYCEE VAN DONGEN",
        StructureKind.LYCEE,
        "100",
    )
    assert Structure.objects.get(uai="0775678B").kind == StructureKind.COLLEGE
    assert sorted(a.identifier for a in report.created) == [
        "anne.dupre",
        "elodie.dupre",
        "jean.dupont",
        "jean.dupont2",
        "louis.pasteur",
        "marc.dupont",
        "marie.curie",
    ]
    elodie = User.objects.get(external_source="aaf", external_id="E1")
    assert elodie.profile == Profile.ELEVE and elodie.state == State.PENDING
    assert str(elodie.birth_date) == "2010-04-03"
    assert elodie.classes.get().name == "2NDE3"
    assert elodie.teaching_groups.get().name == "LATIN"
    assert SchoolClass.objects.get(name="2NDE3").level.startswith("2NDE GENERALE")
    marc = User.objects.get(external_id="P2")
    assert marc.profile == Profile.PARENT
    assert {link.child.external_id for link in marc.child_links.all()} == {"E2", "E3"}
    # A parent belongs to his children's structures, so both référents see him.
    assert set(marc.structures.values_list("uai", flat=True)) == {"0771234A", "0775678B"}
    assert User.objects.get(external_id="P1").email == "anne@example.org"
    marie = User.objects.get(external_id="T1")
    assert marie.profile == Profile.ENSEIGNANT
    assert set(marie.structures.values_list("uai", flat=True)) == {"0771234A", "0775678B"}
    assert set(marie.classes.values_list("name", flat=True)) == {"2NDE3", "6A"}
    assert User.objects.get(external_id="T2").profile == Profile.PERSONNEL


def test_reimport_is_idempotent_and_follows_changes(db, tmp_path):
    import_aaf(build(tmp_path))
    elodie = User.objects.get(external_id="E1")
    elodie.email = "elodie@example.org"
    elodie.set_password("cheval orange batterie agrafe")
    elodie.state = State.ACTIVE
    elodie.save()
    same = import_aaf(tmp_path)
    assert same.created == [] and same.updated == 0 and same.unchanged == 7 and same.left == 0
    assert same.links_created == 0 and same.links_removed == 0

    # Elodie changes name, class and mother; the académie's mail never overrides hers.
    build(
        tmp_path,
        pupils=[
            feed.pupil(
                "E1",
                "Élodie",
                "DUPRÉ-MOREAU",
                "03/04/2010",
                "100",
                "1RE2",
                ["P2"],
                mail="autre@example.org",
            ),
            feed.pupil("E2", "Jean", "DUPONT", "12/09/2009", "100", "2NDE3", ["P2"]),
            feed.pupil("E3", "Jean", "DUPONT", "01/01/2013", "200", "6A", ["P2"]),
        ],
    )
    changed = import_aaf(tmp_path)
    assert changed.created == []
    elodie.refresh_from_db()
    assert elodie.last_name == "DUPRÉ-MOREAU"
    assert (elodie.identifier, elodie.email) == ("elodie.dupre", "elodie@example.org")
    assert elodie.check_password("cheval orange batterie agrafe")
    assert list(elodie.classes.values_list("name", flat=True)) == ["1RE2"]
    assert {link.parent.external_id for link in elodie.parent_links.all()} == {"P2"}
    assert changed.links_created == 1 and changed.links_removed == 1


def test_people_absent_from_a_full_feed_become_leaving_and_come_back(db, tmp_path):
    import_aaf(build(tmp_path))
    build(
        tmp_path,
        pupils=[feed.pupil("E1", "Élodie", "DUPRÉ", "03/04/2010", "100", "2NDE3", ["P1"])],
    )
    report = import_aaf(tmp_path)
    assert report.left == 2
    leaving = set(
        User.objects.filter(leaving_since__isnull=False).values_list("external_id", flat=True)
    )
    assert leaving == {"E2", "E3"}
    # Absent people of a category the export does not carry are not leavers.
    assert not User.objects.filter(profile=Profile.PARENT, leaving_since__isnull=False).exists()
    back = import_aaf(build(tmp_path))
    assert back.left == 0 and back.updated >= 2
    assert not User.objects.filter(leaving_since__isnull=False).exists()


def test_one_academie_feed_never_marks_another_academie_people_leaving(db, tmp_path):
    creteil = build(tmp_path / "creteil")
    versailles = tmp_path / "versailles"
    feed.write(versailles, "EtabEducNat", [feed.structure("900", "0781234C", "LYCEE HOCHE")])
    feed.write(
        versailles,
        "Eleve",
        [
            feed.pupil("V1", "Paul", "HOCHE", "01/02/2010", "900", "2NDE1", ["VP1"]),
            feed.pupil("V2", "Lina", "HOCHE", "02/02/2010", "900", "2NDE1", ["VP1"]),
        ],
    )
    feed.write(versailles, "PersRelEleve", [feed.parent("VP1", "Marc", "HOCHE")])
    feed.write(versailles, "PersEducNat", [feed.teacher("VT1", "Ada", "LOVELACE", ["900"])])
    import_aaf(creteil)
    assert import_aaf(versailles).left == 0
    assert import_aaf(creteil).left == 0  # Versailles's people are not Créteil's to remove
    assert not User.objects.filter(leaving_since__isnull=False).exists()
    # Versailles's next export without Lina: she leaves, and only she.
    feed.write(
        versailles,
        "Eleve",
        [feed.pupil("V1", "Paul", "HOCHE", "01/02/2010", "900", "2NDE1", ["VP1"])],
    )
    assert import_aaf(versailles).left == 1
    assert list(
        User.objects.filter(leaving_since__isnull=False).values_list("external_id", flat=True)
    ) == ["V2"]


def test_malformed_file_changes_nothing(db, tmp_path):
    build(tmp_path)
    (tmp_path / "ENT2026_Complet_20260901_PersRelEleve_0001.xml").write_text(
        "<ficAlimMENESR><addRequest><attr name='sn'><value>X</value></addRequest>"
    )
    with pytest.raises(ImportFileError, match="PersRelEleve_0001.xml est illisible"):
        import_aaf(tmp_path)
    assert User.objects.count() == 0 and Structure.objects.count() == 0


def test_doctype_is_refused(db, tmp_path):
    build(tmp_path)
    (tmp_path / "ENT2026_Complet_20260901_Eleve_0001.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ficAlimMENESR/>'
    )
    with pytest.raises(ImportFileError, match="DOCTYPE"):
        import_aaf(tmp_path)
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    "prolog",
    [
        "<!-- <a> -->",  # a "<" in a comment ended the byte pre-check before the DOCTYPE
        "<!--" + "x" * 70000 + "-->",  # the DOCTYPE beyond the 64 KiB the pre-check reads
    ],
)
def test_doctype_hidden_behind_a_comment_is_refused(db, tmp_path, prolog):
    build(tmp_path)
    entry = feed.pupil("E9", "Zoé", "&boom;", "03/04/2010", "100", "2NDE3").replace(
        "&amp;boom;", "&boom;"
    )
    (tmp_path / "ENT2026_Complet_20260901_Eleve_0001.xml").write_text(
        f'<?xml version="1.0"?>{prolog}<!DOCTYPE x [<!ENTITY boom "BOUM">]>'
        f"<ficAlimMENESR>{entry}</ficAlimMENESR>"
    )
    with pytest.raises(ImportFileError, match="DOCTYPE"):
        import_aaf(tmp_path)
    assert User.objects.count() == 0 and Structure.objects.count() == 0


def test_bad_entries_are_rejected_with_their_number(db, tmp_path):
    build(
        tmp_path,
        pupils=[
            feed.pupil("E1", "Élodie", "DUPRÉ", "03/04/2010", "100", "2NDE3"),
            feed.pupil("E2", "", "SANSPRENOM", "12/09/2009", "100", "2NDE3"),
            feed.pupil("E3", "Jean", "DATE", "32/13/2009", "100", "2NDE3"),
            feed.pupil("E4", "Jean", "NULLEPART", "01/01/2010", "999", "6A"),
        ],
    )
    report = import_aaf(tmp_path)
    reasons = {(r.file.split("_")[3], r.row): r.reason for r in report.rejected}
    assert "prénom (givenName) manquant" in reasons[("Eleve", 2)]
    assert "Date de naissance invalide" in reasons[("Eleve", 3)]
    assert "établissement inconnu (999)" in reasons[("Eleve", 4)]
    assert User.objects.filter(profile=Profile.ELEVE).count() == 1


def test_iso_8859_1_feed(db, tmp_path):
    feed.write(
        tmp_path, "EtabEducNat", [feed.structure("100", "0771234A", "LYCÉE")], encoding="ISO-8859-1"
    )
    feed.write(
        tmp_path,
        "Eleve",
        [feed.pupil("E1", "Zoé", "LEFÈVRE", "01/01/2010", "100", "2A")],
        encoding="ISO-8859-1",
    )
    import_aaf(tmp_path)
    assert User.objects.get().identifier == "zoe.lefevre"


def test_import_aaf_command_and_dry_run(db, tmp_path, capsys):
    build(tmp_path)
    call_command("import_aaf", str(tmp_path), "--dry-run")
    assert User.objects.count() == 0
    out = tmp_path / "codes.csv"
    call_command("import_aaf", str(tmp_path), "--output", str(out))
    printed = capsys.readouterr().out
    assert "Comptes créés : 7" in printed
    assert out.stat().st_mode & 0o077 == 0  # codes in clear: owner only
    text = out.read_text(encoding="utf-8")
    assert text.startswith("Nom;Prénom;Profil;Classes;Identifiant;Code d'activation")
    assert "elodie.dupre" in text
    with pytest.raises(CommandError, match="n'existe pas"):
        call_command("import_aaf", str(tmp_path / "vide"))
    (tmp_path / "vide").mkdir()
    with pytest.raises(CommandError, match="Aucun fichier AAF"):
        call_command("import_aaf", str(tmp_path / "vide"))
    assert Relationship.objects.count() == 3


def test_files_parsed_in_parallel_give_the_same_result(db, tmp_path):
    feed.write(tmp_path, "EtabEducNat", [feed.structure("100", "0771234A", "LYCEE")])
    feed.write(tmp_path, "Eleve", [feed.pupil("E1", "Léa", "MARTIN", "01/01/2010", "100", "2A")], 1)
    feed.write(
        tmp_path,
        "Eleve",
        [
            feed.pupil("E2", "Léa", "MARTIN", "02/02/2010", "100", "2B"),
            feed.pupil("E3", "", "SANSPRENOM", "02/02/2010", "100", "2B"),
        ],
        2,
    )
    report = import_aaf(tmp_path, workers=2)
    assert [a.identifier for a in report.created] == ["lea.martin", "lea.martin2"]
    assert [(r.file[-14:], r.row) for r in report.rejected] == [("Eleve_0002.xml", 2)]
    again = import_aaf(tmp_path, workers=2)
    assert again.created == [] and again.unchanged == 2


def test_a_rejected_entry_is_not_a_leaver(db, tmp_path):
    import_aaf(build(tmp_path))
    build(
        tmp_path,
        pupils=[
            feed.pupil("E1", "Élodie", "DUPRÉ", "03/04/2010", "100", "2NDE3", ["P1"]),
            feed.pupil("E2", "Jean", "DUPONT", "31/31/2009", "100", "2NDE3", ["P2"]),  # typo
            feed.pupil("E3", "Jean", "DUPONT", "01/01/2013", "200", "6A", ["P2"]),
        ],
    )
    report = import_aaf(tmp_path)
    assert len(report.rejected) == 1 and report.left == 0
    assert not User.objects.filter(leaving_since__isnull=False).exists()


def test_namesakes_born_the_same_day_stay_two_people(db, tmp_path):
    school = Structure.objects.create(uai="0771234A", name="Lycée", external_id="100")
    old = User.objects.create_user(
        "lucas.martin",
        None,
        first_name="Lucas",
        last_name="MARTIN",
        profile=Profile.ELEVE,
        birth_date="2010-01-01",
    )
    old.structures.set([school])
    feed.write(tmp_path, "EtabEducNat", [feed.structure("100", "0771234A", "LYCEE")])
    feed.write(
        tmp_path,
        "Eleve",
        [
            feed.pupil("E1", "Lucas", "MARTIN", "01/01/2010", "100", "2A"),
            feed.pupil("E2", "Lucas", "MARTIN", "01/01/2010", "100", "2B"),
        ],
    )
    report = import_aaf(tmp_path)
    assert report.rejected == []
    assert [a.identifier for a in report.created] == ["lucas.martin2"]
    old.refresh_from_db()
    assert old.external_id == "E1"  # the old account was found again, by names + birth date
    assert User.objects.get(external_id="E2").identifier == "lucas.martin2"


def test_memberships_outside_the_export_are_left_alone(db, tmp_path):
    import_aaf(build(tmp_path))
    private = Structure.objects.create(uai="0779999Z", name="Lycée privé (CSV)")
    marie = User.objects.get(external_id="T1")
    marie.structures.add(private)
    import_aaf(tmp_path)
    assert private in marie.structures.all()


def test_only_the_latest_full_export_is_read(db, tmp_path):
    build(tmp_path)
    newer = tmp_path / "ENT2026_Complet_20260902_Eleve_0001.xml"
    newer.write_bytes(
        (tmp_path / "ENT2026_Complet_20260901_Eleve_0001.xml")
        .read_bytes()
        .replace(b"2NDE3", b"1RE1")
    )
    for category in ("EtabEducNat", "PersRelEleve", "PersEducNat"):
        old = tmp_path / f"ENT2026_Complet_20260901_{category}_0001.xml"
        old.rename(tmp_path / f"ENT2026_Complet_20260902_{category}_0001.xml")
    (tmp_path / "ENT2026_Delta_20260903_Eleve_0001.xml").write_text("<ficAlimMENESR/>")
    report = import_aaf(tmp_path)
    assert report.rejected == []
    assert "2 fichier(s) ignoré(s)" in report.warnings[0]
    assert User.objects.get(external_id="E1").classes.get().name == "1RE1"
