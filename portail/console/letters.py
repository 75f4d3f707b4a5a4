"""Login letters ("fiches de connexion") as PDF, and the same selection as CSV.

Each letter carries what the seed says a new user receives "sur un document papier": the portal's
address, the identifier, the first-connection password (the activation code) and the seed's hints.
"""

import csv
import io
from dataclasses import dataclass

from django.conf import settings
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen import canvas

LAYOUTS = {1: (1, 1), 2: (1, 2), 8: (2, 4)}  # letters per A4 page -> (columns, rows)


@dataclass
class Letter:
    first_name: str
    last_name: str
    classes: str
    structure: str
    identifier: str
    code: str | None  # None: the account is already activated


def login_url() -> str:
    return settings.PORTAIL_BASE_URL + "/auth/login"


def first_connection_steps(letter: Letter) -> list[str]:
    """The seed's sentences, in its words, in the order a new user needs them."""
    steps = [
        f"1. L'accès à la page de connexion : {login_url()}",
        "2. Saisissez votre identifiant. L'identifiant « prenom.nom » ne comporte ni majuscule, "
        "ni accent.",
    ]
    if letter.code:
        steps += [
            "3. Saisissez le mot de passe ci-dessus. Le mot de passe vous a été transmis pour la "
            "1ère connexion (minuscules et chiffres).",
            "4. Au cours de la 1ère connexion, vous changez obligatoirement le mot de passe et vous "
            "donnez une adresse de messagerie (et éventuellement un numéro de téléphone).",
        ]
    else:
        steps.append(
            "3. Ce compte est déjà activé : utilisez le mot de passe choisi à la 1ère connexion."
        )
    steps.append(
        "Si vous ne vous souvenez pas des informations de connexion, cliquez sur « Besoin d'aide ? » "
        "sur la page de connexion."
    )
    return steps


def _draw_letter(pdf, letter: Letter, x, y, width, height, size):
    """One letter in the box whose top-left corner is (x, y)."""
    margin = size * 2
    left, right = x + margin, x + width - margin
    line = y - margin - size

    def text(value, font="Helvetica", font_size=size, gap=1.45):
        nonlocal line
        for part in simpleSplit(value, font, font_size, right - left):
            pdf.setFont(font, font_size)
            pdf.drawString(left, line, part)
            line -= font_size * gap

    text("Espace numérique de travail — fiche de connexion", "Helvetica-Bold", size * 1.2)
    text(letter.structure, gap=1.8)
    text(f"{letter.first_name} {letter.last_name}", "Helvetica-Bold", size * 1.3)
    if letter.classes:
        text(f"Classe : {letter.classes}", gap=1.8)
    text(f"Identifiant : {letter.identifier}", "Courier-Bold", size * 1.2)
    if letter.code:
        text(f"Mot de passe de 1ère connexion : {letter.code}", "Courier-Bold", size * 1.2)
    line -= size * 0.6
    for step in first_connection_steps(letter):
        text(step)


def letters_pdf(letters: list[Letter], per_page: int) -> bytes:
    columns, rows = LAYOUTS[per_page]
    page_width, page_height = A4
    cell_width, cell_height = page_width / columns, page_height / rows
    size = {1: 12, 2: 10, 8: 6.2}[per_page]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle("Fiches de connexion")
    pdf.setAuthor("Portail ENT")
    for index, letter in enumerate(letters):
        slot = index % per_page
        if index and slot == 0:
            pdf.showPage()
        if slot == 0 and per_page > 1:  # cutting guides
            pdf.setDash(3, 3)
            pdf.setLineWidth(0.3)
            for c in range(1, columns):
                pdf.line(c * cell_width, 0, c * cell_width, page_height)
            for r in range(1, rows):
                pdf.line(0, r * cell_height, page_width, r * cell_height)
            pdf.setDash()
        column, row = slot % columns, slot // columns
        _draw_letter(
            pdf,
            letter,
            column * cell_width,
            page_height - row * cell_height,
            cell_width,
            cell_height,
            size,
        )
    if not letters:
        pdf.setFont("Helvetica", 12)
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
