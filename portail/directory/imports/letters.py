"""The letters file of an import: identifiers and activation codes, for a mail merge.

`;`-separated, one row per new account; the caller opens the stream as UTF-8 with BOM (Excel then
shows the accents right).
"""

import csv
from collections.abc import Iterable

from .report import CreatedAccount

LETTER_HEADER = ["Nom", "Prénom", "Classes", "Identifiant", "Code d'activation"]


def csv_cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs: OWASP "CSV injection" prefixes a quote."""
    value = "" if value is None else str(value)
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def write_letters(accounts: Iterable[CreatedAccount], stream) -> None:
    writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
    writer.writerow(LETTER_HEADER)
    for account in accounts:
        writer.writerow(
            map(
                csv_cell,
                [
                    account.last_name,
                    account.first_name,
                    ", ".join(account.classes),
                    account.identifier,
                    account.activation_code,
                ],
            )
        )
