"""Login letters for a whole lycée: PDF time and size per layout, and the sealed lot's size.

    python bench/letters.py [--accounts 1500]

A référent with 1,500 accounts generates one lot (portail/console/views/letters.py): its letters
are sealed into the session (AES-256-GCM) and the PDF (1, 2 or 8 per page) and CSV are made from
it. Prints, per layout, the PDF's pages, size and the time to draw it (median of 3), and the
sealed lot's size in the session. No database: letters are drawn from made-up accounts.
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")
os.environ.setdefault("PORTAIL_DEBUG", "1")

import django  # noqa: E402

django.setup()

from portail.console.letters import Letter, letters_csv, letters_pdf  # noqa: E402
from portail.console.views.letters import SEAL_PURPOSE  # noqa: E402
from portail.security.sealing import seal  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=1500)
    args = parser.parse_args()
    letters = [
        Letter(
            f"Prénom{i}",
            f"Nom-Composé{i}",
            f"{6 + i % 4}e {chr(65 + i % 8)}",
            "Collège Jean Moulin",
            f"prenom{i}.nom-compose{i}",
            f"{i:08x}"[-8:],
        )
        for i in range(args.accounts)
    ]
    for per_page in (1, 2, 8):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            pdf = letters_pdf(letters, per_page)
            times.append(time.perf_counter() - start)
        pages = -(-len(letters) // per_page)
        print(
            f"{per_page} par page : {pages} pages, {len(pdf) / 1e6:.2f} Mo, "
            f"{statistics.median(times):.2f} s"
        )
    start = time.perf_counter()
    csv_text = letters_csv(letters)
    print(f"CSV : {len(csv_text.encode()) / 1e3:.0f} ko, {time.perf_counter() - start:.3f} s")
    sealed = seal(SEAL_PURPOSE, json.dumps([letter.as_dict() for letter in letters]))
    print(f"Lot scellé dans la session : {len(sealed) / 1e3:.0f} ko pour {len(letters)} fiches")


if __name__ == "__main__":
    main()
