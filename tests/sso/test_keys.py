"""The OIDC signing key: generated once, private, and published with the retiring keys."""

import stat

from portail.sso.keys import inactive_keys, load_or_create_private_key


def test_key_is_generated_once_and_readable_by_the_owner_only(tmp_path):
    path = tmp_path / "oidc.pem"
    first = load_or_create_private_key(path)
    assert first.startswith("-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_private_key(path) == first


def test_rotation_publishes_the_retiring_key_in_the_jwks(client, db, settings, tmp_path):
    retiring_dir = tmp_path / "inactive"
    retiring_dir.mkdir()
    load_or_create_private_key(retiring_dir / "2025.pem")
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": inactive_keys(str(retiring_dir)),
    }
    keys = client.get("/o/.well-known/jwks.json").json()["keys"]
    assert len(keys) == 2
    assert {key["alg"] for key in keys} == {"RS256"}
    assert all("d" not in key for key in keys)  # public halves only
