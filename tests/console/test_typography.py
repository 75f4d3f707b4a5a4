"""French typography in the console's templates and messages (issue 10 §5): a non-breaking space
before « : ; ! ? » and inside « », the typographic apostrophe in text, « 1re » and « 2de »."""

import io
import re
import tokenize
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "portail" / "console"
# Template code, tags and attributes are not text.
CODE = re.compile(r"({%.*?%}|{{.*?}}|{#.*?#}|<[^>]*>)", re.S)
FAULTS = [
    (re.compile(r" [:;!?»]"), "an ordinary space before : ; ! ? or »"),
    (re.compile(r"« "), "an ordinary space after «"),
    (re.compile(r"(?<=[a-zà-ÿ])'(?=[a-zà-ÿA-ZÀ-Ý]|$)"), "a straight apostrophe"),
    (re.compile(r"\b(1ère|2nde)\b"), "1ère/2nde (French typography writes 1re, 2de)"),
]


def template_text(path):
    return [part for part in CODE.split(path.read_text()) if not CODE.fullmatch(part)]


def python_messages(path):
    """One-line string literals with a space (messages, labels), not docstrings."""
    out, prev = [], None
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if (
            tok.type == tokenize.STRING
            and " " in tok.string
            and not tok.string.lstrip("rbfRBF").startswith(('"""', "'''"))
            and not (prev is not None and prev.type in (tokenize.INDENT, tokenize.NEWLINE))
        ):
            out.append(tok.string)
        if tok.type != tokenize.COMMENT:
            prev = tok
    return out


TEMPLATES = sorted((CONSOLE / "templates" / "console").glob("*.html"))
MODULES = sorted(
    p
    for p in [*CONSOLE.glob("*.py"), *(CONSOLE / "views").glob("*.py")]
    # The letters' CSV header is the importer's, kept as is; models' names would need a migration.
    if p.name not in ("letters.py", "models.py")
)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_console_templates_follow_french_typography(path):
    faults = [
        (why, text.strip()[:80])
        for text in template_text(path)
        for pattern, why in FAULTS
        if pattern.search(text)
    ]
    assert not faults, faults


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_console_messages_follow_french_typography(path):
    faults = []
    for literal in python_messages(path):
        prefix = len(literal) - len(literal.lstrip("rbfRBF"))
        body = re.sub(r"\{[^}]*\}", "", literal[prefix + 1 : -1])  # f-string code is not text
        for pattern, why in FAULTS:
            if pattern.search(body):
                faults.append((why, literal[:80]))
    assert not faults, faults


def test_the_check_finds_a_fault():
    assert any(p.search("Identifiant : x") for p, _ in FAULTS)
    assert any(p.search("l'ENT") for p, _ in FAULTS)
    assert not any(p.search("Identifiant\u00a0: l’ENT") for p, _ in FAULTS)
