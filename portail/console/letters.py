"""Login letters (« fiches de connexion ») as PDF, and the same letters as CSV.

Each letter carries what the help page says a new user receives « sur un document papier »: the
portal's address (and a QR code to it), the identifier, the activation code (the help page's
« mot de passe de 1re connexion »), and numbered instructions. 1, 2 or 8 letters per A4 page;
nothing below 9 pt, the credentials at 14 pt or more in a monospace that tells 0/O and 1/l apart
(DejaVu Sans Mono: a dotted zero, a serifed l and 1; the code alphabet avoids them anyway).
"""

import csv
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import segno
from django.conf import settings
from reportlab.lib.colors import HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

logger = logging.getLogger(__name__)

LAYOUTS = {1: (1, 1), 2: (1, 2), 8: (2, 4)}  # letters per A4 page -> (columns, rows)
NBSP = "\u00a0"
MIN_POINTS = 9  # nothing smaller on any letter
CREDENTIAL_POINTS = 14  # identifier and code

# (body text, heading, credentials, QR code side, margin), in points, per layout.
SIZES = {
    1: (12, 16, 20, 42 * mm, 20 * mm),
    2: (10.5, 13, 16, 30 * mm, 12 * mm),
    8: (MIN_POINTS, 10, CREDENTIAL_POINTS, 20 * mm, 4 * mm),
}
INK, MUTED, RULE = HexColor("#1b1b1b"), HexColor("#4a4a4a"), HexColor("#8a8a8a")

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")  # Debian's fonts-dejavu-core


def _fonts() -> tuple[str, str, str]:
    """(regular, bold, monospace bold): DejaVu when installed, else the PDF base fonts."""
    try:
        for name, file in (
            ("DejaVuSans", "DejaVuSans.ttf"),
            ("DejaVuSans-Bold", "DejaVuSans-Bold.ttf"),
            ("DejaVuSansMono-Bold", "DejaVuSansMono-Bold.ttf"),
        ):
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(DEJAVU / file)))
        return "DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono-Bold"
    except Exception:  # noqa: BLE001 (a missing font file: the letters still print)
        logger.warning("DejaVu fonts not found in %s: letters use Helvetica and Courier", DEJAVU)
        return "Helvetica", "Helvetica-Bold", "Courier-Bold"


@dataclass
class Letter:
    first_name: str
    last_name: str
    classes: str
    structure: str
    identifier: str
    code: str | None  # None: the account is already activated

    def as_dict(self):
        return asdict(self)


def login_url() -> str:
    return settings.PORTAIL_BASE_URL + "/auth/login"


def region_name() -> str:
    return (getattr(settings, "PORTAIL_REGION_NAME", "") or "").strip() or "ENT"


def _logo():
    """The region's logo as an image reportlab can draw, or None (unset, or SVG: not drawable)."""
    path = getattr(settings, "PORTAIL_LOGO", None)
    if not path or Path(path).suffix.lower() == ".svg":
        return None
    try:
        return ImageReader(str(path))
    except Exception:  # noqa: BLE001 (an unreadable logo must not stop the printing)
        logger.warning("PORTAIL_LOGO %s could not be read: letters without logo", path)
        return None


def _qr_image(url: str):
    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=8, border=4)
    buffer.seek(0)
    return ImageReader(buffer)


def instructions(letter: Letter, compact=False) -> list[str]:
    """Numbered instructions, as instructions; the help page's words where it is quoted."""
    url = login_url()
    if compact:  # 8 per page: the same steps, shorter
        steps = [
            f"Ouvrez {url} (ou scannez le QR code).",
            "Saisissez votre identifiant.",
            "Saisissez le code d’activation comme mot de passe.",
            "Choisissez un nouveau mot de passe.",
        ]
    else:
        steps = [
            f"Ouvrez la page de connexion{NBSP}: {url} (ou scannez le QR code).",
            "Saisissez votre identifiant. "
            "L'identifiant « prenom.nom » ne comporte ni majuscule, ni accent.",
            f"Saisissez le code d’activation dans le champ « Mot de passe »{NBSP}: c’est votre "
            "« mot de passe de 1ère connexion » (minuscules et chiffres).",
            "Choisissez un nouveau mot de passe, puis donnez une adresse de messagerie "
            "(et éventuellement un numéro de téléphone).",
        ]
    if not letter.code:
        steps[2:] = ["Saisissez le mot de passe que vous avez choisi à la 1re connexion."]
    return [f"{i}. {step}" for i, step in enumerate(steps, start=1)]


def help_line(compact=False) -> str:
    if compact:
        return f"En cas d’oubli{NBSP}: « Besoin d'aide{NBSP}? » sur la page de connexion."
    return (
        f"Si vous ne vous souvenez pas des informations de connexion, cliquez sur « Besoin "
        f"d'aide{NBSP}? » sur la page de connexion."
    )


def _mono_lines(value, font, size, width) -> list[str]:
    """A credential cut by characters where it is too long (never by hyphen: « - » is part of
    some identifiers)."""
    per_line = max(1, int(width // pdfmetrics.stringWidth("M", font, size)))
    return [value[i : i + per_line] for i in range(0, len(value), per_line)] or [""]


def _draw_letter(pdf, letter: Letter, box, per_page, fonts, images) -> float:
    """One letter in `box` = (x, top, width, height); returns the lowest baseline used."""
    x, top, width, height = box
    body, heading, cred, qr_side, margin = SIZES[per_page]
    regular, bold, mono = fonts
    compact = per_page == 8
    left, right = x + margin, x + width - margin
    line = top - margin

    def text(value, font, size, gap=1.3, indent=0.0, colour=INK, limit=None):
        nonlocal line
        limit = limit or right
        for part in simpleSplit(value, font, size, limit - left - indent):
            line -= size * gap
            pdf.setFont(font, size)
            pdf.setFillColor(colour)
            pdf.drawString(left + indent, line, part)

    # Header: logo, region, « Fiche de connexion ».
    logo = images.get("logo")
    head_top, saved_left = line, left
    if logo is not None:
        w, h = logo.getSize()
        logo_h = heading * (1.4 if compact else 2.6)
        logo_w = min(logo_h * w / h, width / 3)
        pdf.drawImage(logo, left, line - logo_h, logo_w, logo_h, mask="auto")
        left += logo_w + body * 0.8
    if compact:
        region = region_name()
        title = "Fiche de connexion à l’ENT"
        text(title if region == "ENT" else f"{region} — {title}", bold, heading)
    else:
        text(f"{region_name()} — Espace numérique de travail", bold, heading)
        text("Fiche de connexion", regular, body, colour=MUTED)
    left = saved_left
    if logo is not None:
        line = min(line, head_top - logo_h)
    line -= body * 0.45
    pdf.setStrokeColor(RULE)
    pdf.setLineWidth(0.6)
    pdf.line(left, line, right, line)

    # Who, then the credentials; the QR code beside them (or beside the steps at 8 per page).
    qr_top = line - body * 0.5
    text_right = right if compact else right - qr_side - body
    text(
        f"{letter.first_name} {letter.last_name}",
        bold,
        heading,
        gap=1.2 if compact else 1.45,
        limit=text_right,
    )
    detail = letter.structure
    if letter.classes:
        detail += f" — classe{NBSP}: {letter.classes}"
    text(detail, regular, body, gap=1.15 if compact else 1.3, limit=text_right)
    line -= body * (0.2 if compact else 0.35)
    label_width = (
        max(
            pdfmetrics.stringWidth(label, regular, body)
            for label in ("Identifiant", "Code d’activation")
        )
        + body
    )
    for label, value in (("Identifiant", letter.identifier), ("Code d’activation", letter.code)):
        if not value:
            continue
        parts = _mono_lines(value, mono, cred, text_right - left - label_width)
        if compact and len(parts) == 1:  # the label on the credential's line
            line -= cred * 1.2
            pdf.setFont(regular, body)
            pdf.setFillColor(MUTED)
            pdf.drawString(left, line, label)
            for i, part in enumerate(parts):
                if i:
                    line -= cred * 1.15
                pdf.setFont(mono, cred)
                pdf.setFillColor(INK)
                pdf.drawString(left + label_width, line, part)
        else:
            text(label, regular, body, colour=MUTED, limit=text_right)
            for part in _mono_lines(value, mono, cred, text_right - left):
                line -= cred * 1.2
                pdf.setFont(mono, cred)
                pdf.setFillColor(INK)
                pdf.drawString(left, line, part)
            line -= body * 0.3
    if not compact:
        pdf.drawImage(images["qr"], right - qr_side, qr_top - qr_side, qr_side, qr_side)
        line = min(line, qr_top - qr_side)
    line -= body * (0.3 if compact else 0.5)
    steps_top = line
    steps_right = right - qr_side - body * 0.5 if compact else right
    for step in instructions(letter, compact):
        text(step, regular, body, gap=1.12 if compact else 1.2, limit=steps_right)
    if compact:
        pdf.drawImage(images["qr"], right - qr_side, steps_top - qr_side, qr_side, qr_side)
        line = min(line, steps_top - qr_side)
    line -= body * 0.3
    help_lines = simpleSplit(help_line(compact), regular, body, right - left)
    if line - len(help_lines) * body * 1.2 >= top - height + margin / 2:  # else: left out
        text(help_line(compact), regular, body, gap=1.2, colour=MUTED)
    return line


def letters_pdf(letters: list[Letter], per_page: int) -> bytes:
    columns, rows = LAYOUTS[per_page]
    page_width, page_height = A4
    cell_width, cell_height = page_width / columns, page_height / rows
    fonts = _fonts()
    images = {"qr": _qr_image(login_url()), "logo": _logo()}
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle("Fiches de connexion")
    pdf.setAuthor(region_name())
    for index, letter in enumerate(letters):
        slot = index % per_page
        if index and slot == 0:
            pdf.showPage()
        if slot == 0 and per_page > 1:  # cutting guides
            pdf.setStrokeColor(RULE)
            pdf.setDash(3, 3)
            pdf.setLineWidth(0.3)
            for c in range(1, columns):
                pdf.line(c * cell_width, 0, c * cell_width, page_height)
            for r in range(1, rows):
                pdf.line(0, r * cell_height, page_width, r * cell_height)
            pdf.setDash()
        column, row = slot % columns, slot // columns
        top = page_height - row * cell_height
        lowest = _draw_letter(
            pdf,
            letter,
            (column * cell_width, top, cell_width, cell_height),
            per_page,
            fonts,
            images,
        )
        if lowest < top - cell_height:
            logger.warning(
                "letter of %s runs %.1f pt past its cell",
                letter.identifier,
                top - cell_height - lowest,
            )
    if not letters:
        pdf.setFont(fonts[0], 12)
        pdf.drawString(72, page_height - 72, "Aucun compte dans cette sélection.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """OWASP "CSV injection": a cell a spreadsheet would read as a formula is quoted with '."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


CSV_HEADER = ["Nom", "Prénom", "Classes", "Identifiant", "Code d'activation", "Établissement"]


def letters_csv(letters: list[Letter]) -> str:
    """`;`-separated like the region's files; with a BOM so spreadsheet software reads UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for letter in letters:
        writer.writerow(
            csv_cell(v)
            for v in (
                letter.last_name,
                letter.first_name,
                letter.classes,
                letter.identifier,
                letter.code or "",
                letter.structure,
            )
        )
    return out.getvalue()
