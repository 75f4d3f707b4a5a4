"""Reading what the region's tools write: charsets, header names, dates."""

import re
import unicodedata
from datetime import date, datetime

from .report import ImportFileError

_HEADER_DROP = re.compile(r"[\s'’`*_\-.]+")


def fold_header(value: str) -> str:
    """ "Nom de l'élève" -> "nomdeleleve", "Date de naissance*" -> "datedenaissance"."""
    decomposed = unicodedata.normalize("NFD", value.strip().lstrip("\ufeff"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _HEADER_DROP.sub("", plain.lower())


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 / ISO-8859-1 (what spreadsheets export)."""
    if not data.strip():
        raise ImportFileError("Le fichier est vide.")
    if b"\x00" in data:
        raise ImportFileError(
            "Le fichier n'est pas un fichier texte CSV (enregistrez-le au format CSV, séparateur "
            "point-virgule)."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("iso-8859-1")


_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y")


_DMY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


def parse_date(value: str) -> date:
    """JJ/MM/AAAA (also AAAA-MM-JJ); ValueError with a French message otherwise."""
    value = value.strip()
    m = _DMY.match(value)
    if m:  # the common form, without strptime's cost (a feed has a million of them)
        try:
            parsed = date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        except ValueError:
            parsed = None
        if parsed is not None and 1900 <= parsed.year <= date.today().year:
            return parsed
    for fmt in _DATE_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt).date()  # noqa: DTZ007 (a date, no time zone)
        except ValueError:
            continue
        if not 1900 <= parsed.year <= date.today().year:
            break
        return parsed
    raise ValueError(f"Date de naissance invalide « {value} » (attendu : JJ/MM/AAAA).")


_SPLIT_LIST = re.compile(r"\s*[,|]\s*")


def split_list(value: str) -> list[str]:
    """ "3A, 3B" -> ["3A", "3B"] (several classes or groups in one cell)."""
    return [v for v in _SPLIT_LIST.split(value.strip()) if v]
