import hashlib
import re

from django.conf import settings
from django.contrib.auth.hashers import (
    Argon2PasswordHasher,
    BasePasswordHasher,
    get_hasher,
    mask_hash,
)
from django.utils.crypto import constant_time_compare


class PortailArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with the cost set in settings (OWASP's m=19 MiB, t=2, p=1 by default).

    Django upgrades a stored hash whose parameters differ at the next successful login, so raising
    the cost in settings reaches every account without a migration.
    """

    algorithm = "argon2"

    @property
    def time_cost(self):
        return settings.PORTAIL_ARGON2_TIME_COST

    @property
    def memory_cost(self):
        return settings.PORTAIL_ARGON2_MEMORY_KIB

    @property
    def parallelism(self):
        return settings.PORTAIL_ARGON2_PARALLELISM


# --- Legacy hashes of accounts migrated from another ENT (the seed's ENT77) -------------------
#
# Imported as they were, so that people keep their password; they are only ever verified. Django
# rehashes with the first hasher of PASSWORD_HASHERS (Argon2id) at the next successful login,
# since these have another algorithm name: the legacy form lives until that login, not longer.
# Each is stored with a prefix ("legacy_md5$$<hex>") so that identify_hasher() finds it.


class _LegacyHasher(BasePasswordHasher):
    def salt(self):
        return ""

    def verify(self, password, encoded):
        correct = self.verify_legacy(password, encoded)
        if not correct:
            # A wrong password costs one Argon2 computation, as for an unknown identifier or a
            # modern account: timing must not single out the migrated accounts (Django does not
            # do it when the algorithm differs from the preferred one).
            get_hasher("default").encode(password, get_hasher("default").salt())
        return correct

    def must_update(self, encoded):
        return True

    def harden_runtime(self, password, encoded):
        pass  # nothing to harden: these are upgraded at the first successful login

    def decode(self, encoded):
        algorithm, _empty, digest = encoded.split("$", 2)
        assert algorithm == self.algorithm
        return {"algorithm": algorithm, "hash": digest, "salt": ""}

    def safe_summary(self, encoded):
        decoded = self.decode(encoded)
        return {"algorithm": decoded["algorithm"], "hash": mask_hash(decoded["hash"])}


class _UnsaltedHexHasher(_LegacyHasher):
    digestmod = None

    def encode(self, password, salt=""):
        assert password is not None
        return f"{self.algorithm}$${self.digestmod(password.encode()).hexdigest()}"

    def verify_legacy(self, password, encoded):
        digest = self.digestmod(password.encode()).hexdigest()
        return constant_time_compare(digest, self.decode(encoded)["hash"].lower())


class LegacyMD5PasswordHasher(_UnsaltedHexHasher):
    """Unsalted MD5 hex (32 hex digits), as older ENTs stored them."""

    algorithm = "legacy_md5"
    digestmod = staticmethod(hashlib.md5)


class LegacySHA256PasswordHasher(_UnsaltedHexHasher):
    """Unsalted SHA-256 hex (64 hex digits)."""

    algorithm = "legacy_sha256"
    digestmod = staticmethod(hashlib.sha256)


class LegacyBcryptPasswordHasher(_LegacyHasher):
    """A bcrypt hash as PHP or Java left it: $2a$, $2b$ or $2y$ (the same algorithm).

    Django's own BCryptPasswordHasher expects "bcrypt$" + its own form; this one accepts the
    three prefixes of the legacy ENT and only verifies.
    """

    algorithm = "legacy_bcrypt"

    def encode(self, password, salt=""):
        import bcrypt

        return f"{self.algorithm}$${bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}"

    def verify_legacy(self, password, encoded):
        import bcrypt

        stored = self.decode(encoded)["hash"].encode()
        # bcrypt uses at most 72 bytes of the password; bcrypt 5 refuses longer ones instead of
        # truncating, so truncate as the legacy ENT did when it made the hash.
        try:
            return bcrypt.checkpw(password.encode()[:72], stored)
        except ValueError:  # a malformed stored hash opens nothing
            return False


# --- Legacy digests wrapped in Argon2id (issue 7 §4) --------------------------------------------
#
# An unsalted MD5 or SHA-256 in a dump is one dictionary lookup away from the password. At import
# (and, for accounts imported before, by migration 0007) the legacy hex digest itself becomes the
# input of Argon2id with a fresh salt: "argon2_legacy_md5$argon2id$v=19$m=…$salt$hash". Checking a
# password is MD5 (negligible) then one Argon2id verification with the portal's cost, right or
# wrong, the same as for any account; the next successful login stores plain Argon2id (must_update).


class _WrappedLegacyHasher(PortailArgon2PasswordHasher):
    legacy_digest = None  # password -> the legacy ENT's lowercase hex digest

    def wrap(self, legacy_hex: str) -> str:
        """Argon2id over a legacy hex digest as found in the legacy ENT's export."""
        return super().encode(legacy_hex.strip().lower(), self.salt())

    def encode(self, password, salt):
        return super().encode(self.legacy_digest(password), salt)

    def verify(self, password, encoded):
        return super().verify(self.legacy_digest(password), encoded)

    def must_update(self, encoded):
        return True  # plain Argon2id at the next successful login

    def harden_runtime(self, password, encoded):
        pass  # already one full Argon2id computation


class WrappedLegacyMD5PasswordHasher(_WrappedLegacyHasher):
    algorithm = "argon2_legacy_md5"
    legacy_digest = staticmethod(lambda password: hashlib.md5(password.encode()).hexdigest())  # noqa: S324 (the legacy ENT's form, wrapped)


class WrappedLegacySHA256PasswordHasher(_WrappedLegacyHasher):
    algorithm = "argon2_legacy_sha256"
    legacy_digest = staticmethod(lambda password: hashlib.sha256(password.encode()).hexdigest())


_WRAPPERS = {
    LegacyMD5PasswordHasher.algorithm: WrappedLegacyMD5PasswordHasher,
    LegacySHA256PasswordHasher.algorithm: WrappedLegacySHA256PasswordHasher,
}


def wrap_legacy(encoded: str) -> str:
    """The stored form of a legacy hash: unsalted MD5/SHA-256 wrapped in Argon2id.

    bcrypt stays as it is: it is already salted and slow (OWASP Password Storage Cheat Sheet
    accepts it), and its wrapped check would cost bcrypt plus Argon2id at every login.
    """
    algorithm, _empty, digest = encoded.partition("$$")
    wrapper = _WRAPPERS.get(algorithm)
    return wrapper().wrap(digest) if wrapper else encoded


LEGACY_HASH_FORMS = (
    # (pattern of the raw legacy hash, hasher algorithm)
    (re.compile(r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"), LegacyBcryptPasswordHasher.algorithm),
    (re.compile(r"^[0-9a-fA-F]{32}$"), LegacyMD5PasswordHasher.algorithm),
    (re.compile(r"^[0-9a-fA-F]{64}$"), LegacySHA256PasswordHasher.algorithm),
)


def legacy_encoded_password(raw_hash: str) -> str | None:
    """The stored form of a legacy hash (bcrypt, MD5 hex, SHA-256 hex), or None if unknown."""
    raw_hash = raw_hash.strip()
    for pattern, algorithm in LEGACY_HASH_FORMS:
        if pattern.match(raw_hash):
            return f"{algorithm}$${raw_hash}"
    return None
