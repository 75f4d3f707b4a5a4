"""The IdP's signing key and certificate (PEM files), as pysaml2 and xmlsec1 read them.

Production sets PORTAIL_SAML_KEY and PORTAIL_SAML_CERT (paths of PEM files, the same on every
node: the certificate is the one published in the metadata the GAR registered). Without them, a
development or single-node install generates a self-signed pair under VAR_DIR on first use, like
the OIDC key (portail/sso/keys.py), and keeps it.
"""

import datetime
import os
from pathlib import Path

from django.conf import settings

# NIST SP 800-57 Part 1 Rev. 5 §5.6.3: RSA 3072 bits for protection beyond 2030 (the certificate
# lives ten years: the GAR keeps the metadata it registered).
KEY_BITS = 3072
CERT_DAYS = 3650


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def generate_pair(key_path: Path, cert_path: Path, common_name: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    # The certificate is public, but written whole too (a concurrent reader never sees half).
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def signing_files() -> tuple[str, str]:
    """(key path, certificate path): the configured ones, or the generated development pair."""
    key, cert = settings.PORTAIL_SAML_KEY, settings.PORTAIL_SAML_CERT
    if key and cert:
        return key, cert
    key_path = Path(settings.VAR_DIR) / "saml-idp-key.pem"
    cert_path = Path(settings.VAR_DIR) / "saml-idp-cert.pem"
    if not (key_path.exists() and cert_path.exists()):
        generate_pair(key_path, cert_path, "Portail ENT - fournisseur d'identite SAML")
    return str(key_path), str(cert_path)


def certificate_body(cert_path: str) -> str:
    """The certificate's base64 body, as metadata and KeyInfo carry it."""
    lines = Path(cert_path).read_text().strip().splitlines()
    return "".join(line for line in lines if "-----" not in line)
