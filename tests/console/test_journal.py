"""The journal in plain French: every tag the code records has a label; data reads as sentences."""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from portail.console import journal

ROOT = Path(journal.__file__).resolve().parents[1]  # portail/
# The calls that write an audit event, and where their tag is: record(tag, …) and its aliases,
# the console's _audit(tag, …), Event(tag=…) for bulk inserts, set_new_password(…, tag=…).
RECORDERS = {"record", "audit", "_audit"}
TAG_KEYWORD = {"Event", "set_new_password", "record", "audit", "_audit"}


def _name(func):
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _strings(node, constants):
    """The tags an expression can be: its string constants, a module constant's value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return constants.get(node.id, set())
    if isinstance(node, ast.IfExp):
        return _strings(node.body, constants) | _strings(node.orelse, constants)
    return set()


def recorded_tags():
    tags, unresolved = set(), []
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(), str(path))
        constants = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        constants[target.id] = {node.value.value}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            found = set()
            if name in RECORDERS and node.args:
                found = _strings(node.args[0], constants)
                if not found and not (
                    isinstance(node.args[0], ast.Name) and node.args[0].id == "tag"
                ):
                    unresolved.append(f"{path}:{node.lineno}")
            if name in TAG_KEYWORD:
                for kw in node.keywords:
                    if kw.arg == "tag":
                        found |= _strings(kw.value, constants)
            tags |= {t for t in found if "." in t}
    return tags, unresolved


def test_every_recorded_tag_has_a_french_label():
    tags, unresolved = recorded_tags()
    assert not unresolved, f"audit calls whose tag this test cannot read: {unresolved}"
    # The reader finds the tags (a reader that found none would pass trivially).
    assert {"account.activated", "account.password.set", "console.account.merged"} <= tags
    assert {"account.credentials_mailed", "account.password.reset_requested"} <= tags
    assert {"directory.import", "account.created"} <= tags
    missing = sorted(tags - journal.LABELS.keys())
    assert not missing, f"tags without a French label in portail/console/journal.py: {missing}"


def test_labels_are_french_sentences_not_tags():
    for tag, label in journal.LABELS.items():
        assert tag not in label and "_" not in label and "'" not in label, label
        assert label[0].isupper()


def event(tag, data=None, target_id=1, actor=None):
    return SimpleNamespace(tag=tag, data=data or {}, target_id=target_id, actor=actor)


@pytest.mark.parametrize(
    "before,after,expected",
    [
        ({"state": "pending"}, {"state": "pending"}, []),
        ({"state": "active"}, {"state": "blocked"}, ["État\u00a0: Actif → Bloqué"]),
        ({"classes": ["2nde 3"]}, {"classes": ["1ère G2"]}, ["Classe\u00a0: 2de 3 → 1re G2"]),
        (
            {"classes": ["2nde 3"]},
            {"classes": ["2nde 3", "1ère G2"]},
            ["Classes\u00a0: 2de 3 → 2de 3, 1re G2"],
        ),
        ({"email": False}, {"email": True}, ["Adresse de messagerie\u00a0: vide → renseigné"]),
        (
            {"identifier": "jean.dupont"},
            {"identifier": "jean.dupont2"},
            ["Identifiant\u00a0: jean.dupont → jean.dupont2"],
        ),
    ],
)
def test_changes_read_as_french(before, after, expected):
    assert journal.changes(before, after) == expected


def test_no_python_value_in_any_sentence():
    data = {
        "before": {"state": "pending", "classes": ["2nde 3"], "external_id": False},
        "after": {"state": "pending", "classes": [], "external_id": True, "deactivated": True},
    }
    text = " ".join(journal._details(event("console.account.new_code", data), {}))
    for raw in ("[", "]", "'", "False", "True", "None", "pending", "state"):
        assert raw not in text, (raw, text)


def test_a_merge_says_what_was_merged():
    data = {
        "kept": 1,
        "folded": 2,
        "before": {"classes": ["6e A"], "email": False, "phone": True, "parents": []},
        "after": {"classes": ["6e A", "6e B"], "email": True, "phone": True, "parents": [3]},
    }
    lines = journal._details(
        event("console.account.merged", data), {2: "lea.petit2", 3: "marc.petit"}
    )
    assert lines == [
        "Compte fusionné dans celui-ci\u00a0: lea.petit2",
        "Repris de l’autre compte\u00a0: classe 6e B\u00a0; parent marc.petit\u00a0; "
        "adresse de messagerie",
    ]


def test_sentence_names_who_acted():
    actor = SimpleNamespace(pk=9, display_name="Anne Martin", identifier="anne.martin")
    e = event("console.account.blocked", {}, target_id=1, actor=actor)
    e.at = None
    row = journal.Row(e, journal.label(e.tag), f"{journal.label(e.tag)}{journal._by(e)}.", [])
    assert row.sentence == "Compte bloqué par Anne Martin (anne.martin)."
    assert journal._by(event("account.login", actor=SimpleNamespace(pk=1))) == ""


def test_filter_lists_french_labels():
    choices = journal.tag_choices(["console.account.blocked", "account.activated"])
    assert choices == [
        ("account.activated", "Compte activé (1re connexion)"),
        ("console.account.blocked", "Compte bloqué"),
    ]


@pytest.mark.parametrize(
    "name,shown",
    [
        ("2nde 3", "2de 3"),
        ("1ère G2", "1re G2"),
        ("1ere S", "1re S"),
        ("6e B", "6e B"),
        ("Terminale 1", "Terminale 1"),
        ("3ème A", "3e A"),
    ],
)
def test_class_names_in_french_typography(name, shown):
    assert journal.class_name(name) == shown
