"""Identifiers as the region generates them, and the folding that forgives what users type."""

import re
import unicodedata

IDENTIFIER_PART_MAX = 30
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_NOT_IDENTIFIER = re.compile(r"[^a-z0-9.]")


def _strip_accents(value: str) -> str:
    decomposed = unicodedata.normalize("NFD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def identifier_part(name: str) -> str:
    """One half of "prenom.nom": NFD, accents dropped, only a-z0-9 kept, lowercased, 30 max."""
    return _NOT_ALNUM.sub("", _strip_accents(name).lower())[:IDENTIFIER_PART_MAX]


def base_identifier(first_name: str, last_name: str) -> str:
    """("Mary Anne", "O'Connor") -> "maryanne.oconnor"; ("José", "García") -> "jose.garcia"."""
    return f"{identifier_part(first_name)}.{identifier_part(last_name)}"


def next_free_identifier(base: str, taken) -> str:
    """base, else base2, base3, … — the first one not in `taken` (a set, or any container)."""
    if base not in taken:
        return base
    n = 2
    while f"{base}{n}" in taken:
        n += 1
    return f"{base}{n}"


def fold_identifier(typed: str) -> str:
    """What the user typed, as the identifier it means: "  Élodie.DUPRÉ " -> "elodie.dupre".

    The seed warns that identifiers have neither capitals nor accents; we forgive both, and
    surrounding spaces. Characters that can never be in an identifier are kept out of the lookup
    by dropping them, so the result always matches ^[0-9a-z.]*$.
    """
    # NFKC first: "ſ" (long s) and the Kelvin sign become "s" and "K", so a spelling variant is
    # the identifier it looks like, for the lookup and the limits alike. lower(), not casefold():
    # "Strauß" was generated as "strau" (identifier_part drops the ß), casefold would say "ss".
    return _NOT_IDENTIFIER.sub("", _strip_accents(unicodedata.normalize("NFKC", typed).lower()))


def fold_email(typed: str) -> str:
    """An address as recovery compares it: Unicode case folding and compatibility normalisation.

    The one folding of addresses: the stored `User.email_folded`, the lookup of lost identifier
    and its limit keys all go through it, so no spelling gets a budget of its own or a match the
    key did not count. casefold() then NFKC (Unicode's NFKC_Casefold, UAX #15 and §3.13 of the
    standard) takes "ſ" to "s" and the Kelvin sign to "k", which lower() leaves alone, while the
    database's UPPER() would have matched them; "ı" stays itself here, so it matches no account.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", typed).casefold())
    return folded.strip()
