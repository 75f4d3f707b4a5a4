"""Interoperability with Node's openid-client (panva; a relying party nobody here wrote), against a
running `portail serve` (issue 9, point 7).

tests/interop/node/rp.mjs does, for a public and a confidential client: discovery under the
issuer, code + PKCE with the portal's login form, ID token validation, userinfo, refresh with
rotation (the old refresh token then refused), silent re-authentication (prompt=none),
RP-initiated logout, and prompt=none after it (login_required, with RFC 9207's iss checked).
The package is pinned by tests/interop/node/package-lock.json and installed with `npm ci`.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.interop.portal import INTEROP, POST_LOGOUT_URI, REDIRECT_URI, portal, require_tool

__all__ = ["portal"]  # the module fixture

NODE_DIR = INTEROP / "node"


@pytest.fixture(scope="module")
def node():
    path = require_tool("node")
    npm = require_tool("npm")
    if not (NODE_DIR / "node_modules" / "openid-client").exists():
        # The lockfile's exact versions, from the npm registry (the only network use of the tests).
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return path


def run_rp(node, portal, kind):
    client = portal["clients"][kind]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ISSUER": portal["issuer"],
        "CLIENT_ID": client["client_id"],
        "REDIRECT_URI": REDIRECT_URI,
        "POST_LOGOUT_URI": POST_LOGOUT_URI,
        "IDENTIFIER": portal["identifier"],
        "PASSWORD": portal["password"],
    }
    if kind == "confidential":
        env["CLIENT_SECRET"] = client["client_secret"]
    done = subprocess.run(
        [node, str(NODE_DIR / "rp.mjs")],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout + Path(portal["log"]).read_text()[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["public", "confidential"])
def test_openid_client_completes_every_flow(node, portal, kind):
    result = run_rp(node, portal, kind)
    assert result["issuer"] == portal["issuer"]
    claims = result["claims"]
    assert claims["iss"] == portal["issuer"]
    assert claims["aud"] == portal["clients"][kind]["client_id"]
    assert claims["sub"]
    userinfo = result["userinfo"]
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["name"] == "Léa Martin"
    assert userinfo["email"] == "lea.martin@example.org"
    assert result["refreshed"]["new_refresh_token"] is True
    assert result["refreshed"]["userinfo"]["sub"] == claims["sub"]
    assert result["replayed_refresh"] == "invalid_grant"
    assert result["silent_sub"] == claims["sub"]
    assert result["logout_landing"].startswith(POST_LOGOUT_URI)
    assert "state=au-revoir" in result["logout_landing"]
    assert result["after_logout"] == "login_required"
