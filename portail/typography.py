"""French typography: one checker and one fixer for the portal's text (issue 10).

French puts a non-breaking space before « : ; ! ? » and inside « », writes the apostrophe ’ and
the ordinals « 1re », « 2de ». `problems(text)` lists what is missing, `fix(text)` repairs it; the
test tests/test_typography.py renders every public page and mail and asserts `problems` finds none.

The help page's own wording is quoted verbatim where the portal repeats it (« Besoin d'aide ? »,
« Retour à l'écran d'accueil »…): those phrases keep the seed's straight apostrophe (SEED_VERBATIM);
`normalise()` is the one comparison helper that lets tests read the seed either way.
"""

import html
import re
from dataclasses import dataclass

NBSP = "\u00a0"
NNBSP = "\u202f"
_SPACES = NBSP + NNBSP
# Phrases of the region's help page the portal repeats word for word (straight apostrophes kept).
SEED_VERBATIM = (
    "Besoin d'aide ?",
    "Retour à l'écran d'accueil",
    "L'identifiant « prenom.nom » ne comporte ni majuscule, ni accent.",
)

_SCRIPT_STYLE = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
_BLOCK = re.compile(
    r"</?(p|div|li|ul|ol|h[1-6]|tr|td|th|table|section|header|footer|main|nav|form|label|dt|dd|dl|br|option|select|button|title|head|body|html)\b[^>]*>",
    re.I,
)
_ORDINALS = [
    (re.compile(r"\b1(ère|ere)\b"), "1re"),
    (re.compile(r"\b1<sup>(ère|ere)</sup>"), "1<sup>re</sup>"),
    (re.compile(r"\b2nde\b"), "2de"),
    (re.compile(r"\b(\d+)(ème|eme)\b"), r"\1e"),
]
_APOSTROPHE = re.compile(r"(?<=[A-Za-zÀ-ÿ])'(?=[A-Za-zÀ-ÿ])")


@dataclass(frozen=True)
class Problem:
    kind: str
    excerpt: str

    def __str__(self):
        return f"{self.kind}: …{self.excerpt}…"


def visible_text(page: str) -> str:
    """The text a user reads in an HTML page: no tags, scripts, styles; entities decoded."""
    page = _SCRIPT_STYLE.sub(" ", page)
    page = re.sub(r"<!--.*?-->", " ", page, flags=re.S)
    # attributes a user hears (aria-label, alt, title, placeholder) count too
    heard = " ".join(
        m.group(2) for m in re.finditer(r'\b(aria-label|alt|title|placeholder)="([^"]*)"', page)
    )
    page = _BLOCK.sub("\n", page)
    return html.unescape(_TAG.sub("", page) + "\n" + heard)


def _masked(text: str) -> str:
    """The text with the seed's verbatim phrases blanked out for the apostrophe checks."""
    text = text.replace(NBSP, " ").replace(NNBSP, " ")  # same length: positions still match
    for phrase in SEED_VERBATIM:
        text = text.replace(phrase, " " * len(phrase))
    return text


def problems(text: str) -> list[Problem]:
    """What French typography misses in this plain text (use visible_text() on HTML first).

    A mark glued to the word before it (« a:b », « ?next= », « http:// ») is technical text and
    left alone; a mark after an ordinary, breakable space is a missing NBSP.
    """
    found = []
    for m in re.finditer(r"[ \t]([:;!?»])", text):
        found.append(
            Problem(
                f"espace insécable avant « {m.group(1)} »",
                text[max(0, m.start() - 20) : m.end() + 5],
            )
        )
    for m in re.finditer(r"«[ \t]", text):
        found.append(Problem("espace insécable après « « »", text[m.start() : m.start() + 25]))
    masked = _masked(text)
    for m in _APOSTROPHE.finditer(masked):
        found.append(
            Problem("apostrophe droite (’)", text[max(0, m.start() - 15) : m.start() + 15])
        )
    for pattern, _ in _ORDINALS:
        for m in pattern.finditer(masked):
            found.append(Problem("ordinal (1re, 2de, 3e)", m.group(0)))
    return found


def _verbatim(phrase: str) -> "re.Pattern[str]":
    """A seed phrase whatever its spaces are (ordinary, NBSP or narrow NBSP)."""
    return re.compile(re.escape(phrase).replace("\\ ", f"[ {_SPACES}]"))


def fix(text: str, apostrophes: bool = True) -> str:
    """The text with French typography applied: NBSP before : ; ! ? », after «; ’; 1re, 2de.

    Safe on templates and HTML: tags, template tags and URLs are left as they are.
    """
    if apostrophes:
        text = re.sub(r"\b1<sup>(ère|ere)</sup>", "1<sup>re</sup>", text)
    out = []
    for piece in re.split(r"(<[^>]*>|\{[{%#].*?[}%#]\})", text, flags=re.S):
        if piece.startswith("<") or piece.startswith("{"):
            out.append(piece)
            continue
        if apostrophes:
            kept = {}
            for n, phrase in enumerate(SEED_VERBATIM):
                # the phrase as written, whatever spaces (NBSP or not) the template put in it
                for m, found in enumerate(set(_verbatim(phrase).findall(piece))):
                    marker = f"\x00{n}.{m}\x00"
                    kept[marker] = fix(found, apostrophes=False)
                    piece = piece.replace(found, marker)
            piece = _APOSTROPHE.sub("’", piece)
            for pattern, repl in _ORDINALS:
                piece = pattern.sub(repl, piece)
            for marker, phrase in kept.items():
                piece = piece.replace(marker, phrase)
        piece = re.sub(r"[ \t]([:;!?»])", NBSP + r"\1", piece)
        piece = re.sub(r"«[ \t]", "«" + NBSP, piece)
        out.append(piece)
    return "".join(out)


def normalise(text: str) -> str:
    """For comparing with the seed's wording: NBSPs read as spaces, ’ as '."""
    return text.replace(NBSP, " ").replace(NNBSP, " ").replace("’", "'")


def either(text: str) -> "re.Pattern[str]":
    """A pattern matching `text` in either typography (for Playwright's name= and has_text=):
    any space also matches an NBSP, any apostrophe ' or ’."""
    pattern = re.escape(normalise(text))
    pattern = pattern.replace("'", "['’]").replace("\\ ", "\\s")
    return re.compile(pattern)


class Normalised(str):
    """A text read through `normalise`, whose `in` normalises the needle too: the tests'
    `MESSAGE in page` holds whether MESSAGE and the page use NBSPs and ’ or not."""

    def __contains__(self, needle):
        return str.__contains__(self, normalise(needle))


def normalised(text: str) -> Normalised:
    return Normalised(normalise(text))
