"""`python -m demo` (what `make run` runs): the portal and its two demo applications, one command.

Migrates the SQLite file, loads the demo school and registers the applications (load-demo), starts
« Cahier de textes » (CAS) and « Classeur » (OpenID Connect) on loopback ports in this process and
the portal's development server as a child; Ctrl-C (or SIGTERM) stops everything.
"""

import argparse
import os
import signal
import subprocess
import sys

from .apps import CasDemo, OidcDemo, serve

HOST = "127.0.0.1"
# A public client (no secret): code + PKCE is its proof (RFC 7636; RFC 9700 §2.1.1).
OIDC_CLIENT_ID = "demo-classeur"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="the portal's port (8000)")
    parser.add_argument("--cas-port", type=int, default=8001, help="« Cahier de textes » (8001)")
    parser.add_argument("--oidc-port", type=int, default=8002, help="« Classeur » (8002)")
    args = parser.parse_args(argv)

    portal = f"http://{HOST}:{args.port}"
    cas_url, oidc_url = f"http://{HOST}:{args.cas_port}", f"http://{HOST}:{args.oidc_port}"
    env = {**os.environ, "PORTAIL_DEBUG": os.environ.get("PORTAIL_DEBUG", "1")}
    env.setdefault("PORTAIL_BASE_URL", portal)

    def portail(*command):
        subprocess.run([sys.executable, "-m", "portail", *command], env=env, check=True)

    portail("migrate", "--noinput")
    portail(
        "load-demo",
        *("--cas-app-url", cas_url, "--oidc-app-url", oidc_url),
        *("--oidc-client-id", OIDC_CLIENT_ID),
    )

    servers = [
        serve(CasDemo(portal, cas_url), HOST, args.cas_port),
        serve(OidcDemo(portal, oidc_url, OIDC_CLIENT_ID), HOST, args.oidc_port),
    ]
    print(f"Applications de démonstration : {cas_url}/ (CAS), {oidc_url}/ (OpenID Connect)")
    print(f"Portail : {portal}/auth/login — Ctrl-C arrête tout.", flush=True)
    # SIGTERM ends like Ctrl-C: the child server and the applications stop with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    child = subprocess.Popen(
        [sys.executable, "-m", "portail", "runserver", f"{HOST}:{args.port}", "--noreload"],
        env=env,
    )
    try:
        return child.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in servers:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C during the migration or load-demo: no traceback
        sys.exit(130)
