"""The letters file of an import: identifiers and activation codes, for a mail merge.

`;`-separated, one row per new account, UTF-8 with BOM (Excel then shows the accents right);
written by `pending.deliver`, whole or not at all.
"""

LETTER_HEADER = ["Nom", "Prénom", "Classes", "Identifiant", "Code d'activation"]


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs: OWASP "CSV injection" prefixes a quote."""
    value = "" if value is None else str(value)
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value
