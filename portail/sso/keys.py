"""The OpenID Connect signing key (RS256), read by settings.py before Django is set up.

Production sets PORTAIL_OIDC_RSA_PRIVATE_KEY (PEM) on every node. Without it, a single-node or
development install generates one 2048-bit key (NIST SP 800-57: ≥ 2048 bits until 2030) under
VAR_DIR on first use and keeps it; several nodes must share the variable instead.

Rotation: generate a new key, put it in PORTAIL_OIDC_RSA_PRIVATE_KEY and move the previous one to
PORTAIL_OIDC_RSA_PRIVATE_KEYS_INACTIVE (a directory of PEM files, see settings.py). The JWKS
publishes both (django-oauth-toolkit's OIDC_RSA_PRIVATE_KEYS_INACTIVE), so ID tokens signed with
the old key still verify; drop the old key once the longest ID token lifetime has passed.
"""

import os
from pathlib import Path


def load_or_create_private_key(path: Path) -> str:
    if path.exists():
        return path.read_text()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created readable by the owner only; written whole, so a concurrent reader never sees half.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    tmp.replace(path)
    return pem


def inactive_keys(directory: str) -> list[str]:
    if not directory:
        return []
    return [p.read_text() for p in sorted(Path(directory).glob("*.pem"))]
