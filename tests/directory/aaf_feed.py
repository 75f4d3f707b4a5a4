"""Builds an AAF full export as the académie ships it, for the tests."""

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

DATE = "20260901"


def entry(category, identifier, attrs):
    lines = [
        "<addRequest>",
        '<operationalAttributes><attr name="categoriePersonne">'
        f"<value>{escape(category)}</value></attr></operationalAttributes>",
        f"<identifier><id>{escape(identifier)}</id></identifier>",
        "<attributes>",
    ]
    for name, values in attrs.items():
        if isinstance(values, str):
            values = [values]
        vals = "".join(f"<value>{escape(v)}</value>" for v in values)
        lines.append(f"<attr name={quoteattr(name)}>{vals}</attr>")
    lines += ["</attributes>", "</addRequest>"]
    return "\n".join(lines)


def write(directory: Path, category: str, entries, number=1, encoding="UTF-8"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"ENT2026_Complet_{DATE}_{category}_{number:04d}.xml"
    body = "\n".join(entries)
    path.write_bytes(
        f'<?xml version="1.0" encoding="{encoding}"?>\n<ficAlimMENESR>\n{body}\n</ficAlimMENESR>\n'.encode(
            encoding
        )
    )
    return path


def structure(jointure, uai, name, kind="LYC"):
    return entry(
        "EtabEducNat",
        jointure,
        {
            "ENTStructureJointure": jointure,
            "ENTStructureUAI": uai,
            "ENTStructureNomCourant": name,
            "ENTStructureTypeStruct": kind,
        },
    )


def pupil(jointure, first, last, birth, struct, klass, parents=(), groups=(), mail=None):
    attrs = {
        "ENTPersonJointure": jointure,
        "sn": last,
        "givenName": first,
        "ENTPersonDateNaissance": birth,
        "ENTPersonStructRattach": struct,
        "ENTEleveClasses": [f"{struct}${klass}"],
        "ENTEleveGroupes": [f"{struct}${g}" for g in groups],
        "ENTEleveNivFormation": "2NDE GENERALE ET TECHNOLOGIQUE",
        "ENTElevePersRelEleve": [f"{p}$10$1$1$0$1" for p in parents],
    }
    if mail:
        attrs["mail"] = mail
    return entry("Eleve", jointure, attrs)


def parent(jointure, first, last, mail=None):
    attrs = {"ENTPersonJointure": jointure, "sn": last, "givenName": first}
    if mail:
        attrs["mail"] = mail
    return entry("PersRelEleve", jointure, attrs)


def teacher(jointure, first, last, structs, classes=(), teaches=True, mail=None):
    attrs = {
        "ENTPersonJointure": jointure,
        "sn": last,
        "givenName": first,
        "ENTPersonDateNaissance": "06/05/1972",
        "ENTPersonStructRattach": structs[0],
        "ENTPersonFonctions": [f"{s}$ENS$ENSEIGNEMENT$L1300$MATHEMATIQUES" for s in structs],
        "ENTAuxEnsClasses": list(classes),
        "PersEducNatPresenceDevantEleves": "O" if teaches else "N",
    }
    if mail:
        attrs["mail"] = mail
    return entry("PersEducNat", jointure, attrs)
