"""`make screenshots`: PNGs of every page at 1280 and 375 px into docs/screenshots/.

Starts the portal as `make run` does (migrate, load-demo, runserver), but with DEBUG off, on a fresh
SQLite file and a free loopback port, then walks tests/public_pages.py (the list the browser tests
check): add a page there and it is photographed too. Logged-in pages use the demo's parent.test and
referent.demo (whose second factor is enrolled here with a fixed secret). Full-page PNGs, quantised with Pillow when it
is installed, to keep the repository small.

    python tools/screenshots.py [--out docs/screenshots] [--region Exemple] [--only connexion,aide]
"""

import argparse
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pyotp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.public_pages import PUBLIC_PAGES, SIZES, visit  # noqa: E402

DEMO_LINE = re.compile(r"identifiant (\S+)\s+code d.activation (\S+)")
# What load-demo prints (any space, NBSP or not): « identifiant parent.test, mot de passe « … » ».
DEMO_PASSWORD = re.compile(r"identifiant\s+parent\.test,\s+mot\s+de\s+passe\s+«\s*(.+?)\s*»")
REFERENT = re.compile(
    r"Référent\s+ENT\s+du\s+lycée\s*:\s*identifiant\s+(\S+),\s+mot\s+de\s+passe\s+«\s*(.+?)\s*»"
)
# The référent's TOTP secret for these screenshots only (a throw-away database).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ENROL = f"""
from django.utils import timezone
from portail.accounts.management.commands.load_demo import REFERENT_IDENTIFIER
from portail.accounts.models import User
from portail.console import otp
from portail.console.models import TOTPDevice
TOTPDevice.objects.update_or_create(
    user=User.objects.get(identifier=REFERENT_IDENTIFIER),
    defaults=dict(encrypted_secret=otp.encrypt("{TOTP_SECRET}"), confirmed_at=timezone.now()),
)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_portal(var_dir, port, region):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAIL_", "DJANGO_"))
        and k not in {"DATABASE_URL", "EMAIL_URL", "REDIS_URL"}
    }
    # Production mode (DEBUG off): the portal's own error pages and no dev-only links. Its mail
    # goes to a relay that is never contacted (the queue is not worked), so nothing leaves.
    env.update(
        PORTAIL_DEBUG="0",
        PORTAIL_SECRET_KEY="screenshots-" + "k" * 50,
        EMAIL_URL="smtp://127.0.0.1:9",
        PORTAIL_VAR_DIR=str(var_dir),
        PORTAIL_BASE_URL=f"http://127.0.0.1:{port}",
    )
    if region:
        env["PORTAIL_REGION_NAME"] = region

    def portail(*args):
        return subprocess.run(
            [sys.executable, "-m", "portail", *args],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout

    portail("migrate", "--noinput")
    portail("collectstatic", "--noinput")
    # The demo applications' tiles on the home page (their servers are not needed for a picture).
    output = portail(
        "load-demo",
        "--cas-app-url=http://127.0.0.1:9/cahier/",
        "--oidc-app-url=http://127.0.0.1:9/classeur",
    )
    accounts = DEMO_LINE.findall(output)
    portail("shell", "-c", ENROL)
    server = subprocess.Popen(
        [sys.executable, "-m", "portail", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit("the portal did not start")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server, accounts, output
        except OSError:
            if time.monotonic() > deadline:
                server.terminate()
                raise SystemExit("the portal did not answer within 60 s") from None
            time.sleep(0.2)


def save_png(data: bytes, path: Path):
    try:
        from PIL import Image
    except ImportError:
        path.write_bytes(data)
        return
    image = Image.open(io.BytesIO(data)).convert("RGB")
    # 256 colours are plenty for flat UI; optimised PNGs are 3-5 times smaller.
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--region", default="Exemple", help="PORTAIL_REGION_NAME shown in the header"
    )
    parser.add_argument("--only", default="", help="comma-separated page names")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {n for n in args.only.split(",") if n}
    pages = [p for p in PUBLIC_PAGES if not wanted or p.name in wanted]

    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as var_dir:
        server, accounts, output = start_portal(var_dir, port, args.region)
        demo_password = DEMO_PASSWORD.search(output).group(1)
        referent, referent_password = REFERENT.search(output).groups()
        pending = next(iter(accounts), None)
        logins = {
            "user": ("parent.test", demo_password),
            "referent": (referent, referent_password, pyotp.TOTP(TOTP_SECRET).now),
        }
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                states = {}
                for size, (width, height) in SIZES.items():
                    for public_page in pages:
                        # Each account logs in once for all its pages: a second factor code is
                        # accepted once, and one session keeps « Mon compte » and the journal plain.
                        state = states.get(public_page.account)
                        context = browser.new_context(
                            base_url=f"http://127.0.0.1:{port}",
                            locale="fr-FR",
                            viewport={"width": width, "height": height},
                            storage_state=state,
                        )
                        page = context.new_page()
                        visit(
                            page,
                            public_page,
                            pending=pending,
                            logins={**logins, public_page.account: None} if state else logins,
                        )
                        if public_page.account in ("user", "referent"):
                            states[public_page.account] = context.storage_state()
                        target = out / f"{public_page.name}-{size}.png"
                        save_png(page.screenshot(full_page=True), target)
                        print(
                            f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
                            f"  {target.stat().st_size // 1024} Kio"
                        )
                        context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
