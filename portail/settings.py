"""Portail settings: one module, every knob read from the environment.

The embedded default (no variable set) is the `make run` developer setup: SQLite file, local-memory
cache, the dev mailbox. Production sets DATABASE_URL, REDIS_URL, EMAIL_URL, PORTAIL_BASE_URL and
PORTAIL_SECRET_KEY; everything else already has its safe value.
"""

import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
# Writable state of the embedded default (SQLite file, collected static files).
VAR_DIR = Path(os.environ.get("PORTAIL_VAR_DIR", BASE_DIR.parent / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or default


def parse_email_url(url: str) -> dict:
    """smtp://host:port, smtp+tls://user:password@host:port (STARTTLS), smtps://… (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtp+tls", "smtps"}:
        raise ImproperlyConfigured(f"EMAIL_URL: unsupported scheme {parts.scheme!r}")
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parts.hostname or "localhost",
        "EMAIL_PORT": parts.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[parts.scheme],
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": parts.scheme == "smtp+tls",
        "EMAIL_USE_SSL": parts.scheme == "smtps",
    }


# --- Core -------------------------------------------------------------------------------------

# Development mode: detailed error pages, the dev mailbox page. Never on in production.
DEBUG = env_bool("PORTAIL_DEBUG", False)
# Signs sessions and keys the hashes of codes and tokens: a database dump alone reveals neither.
SECRET_KEY = os.environ.get("PORTAIL_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("PORTAIL_ALLOW_INSECURE_KEY", False):
        raise ImproperlyConfigured(
            "PORTAIL_SECRET_KEY must be set (or PORTAIL_DEBUG=1 for the development setup)."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production-portail"  # noqa: S105
# Host names this server answers to.
ALLOWED_HOSTS = env_list("PORTAIL_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
# Public address of the portal: every link in an email is built from it, never from Host.
PORTAIL_BASE_URL = os.environ.get("PORTAIL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Behind a TLS-terminating reverse proxy: trust its X-Forwarded-Proto and X-Forwarded-For.
PORTAIL_BEHIND_PROXY = env_bool("PORTAIL_BEHIND_PROXY", False)

INSTALLED_APPS = [
    "portail.admin_site.PortailAdminConfig",  # django.contrib.admin behind the portal login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",
    "csp",
    "portail.audit",
    "portail.security",  # login throttling: account failures, used challenges
    "portail.directory",
    "portail.accounts",
    "portail.activation",
    "portail.recovery",
    "portail.profile",  # « Mon compte »: contact details, password, open sessions, new-device mail
    "portail.mail",
    "portail.console",
    "portail.pages",  # legal pages, brand (logo, colour), footer
    "portail.federation.login",  # login with ÉduConnect (SAML SP) and FranceConnect (OIDC RP)
    "portail.sso",  # before oauth2_provider: its French templates replace the toolkit's
    "oauth2_provider",
]

MIDDLEWARE = [
    "portail.ops.middleware.RequestLogMiddleware",  # first: sees every answer, logs and counts it
    "django.middleware.security.SecurityMiddleware",
    "portail.security.middleware.ClientIPMiddleware",
    # The back-channel endpoints (CAS validation, /o/token/, userinfo…) skip what follows but
    # for ops.middleware.BACK_CHANNEL_MIDDLEWARE: they read no cookie and render no page.
    "portail.ops.middleware.BackChannelMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Outside SessionMiddleware: a request's deferred writes go with the session's INSERT, what
    # is left when the response is ready (ops.statements).
    "portail.ops.statements.DeferredWritesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portail.profile.sessions.SessionIndexMiddleware",  # the open-sessions index follows key changes
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "portail.security.middleware.NoStoreMiddleware",
    "portail.ops.middleware.DatabaseUnavailableMiddleware",  # a view's lost database: 503 page
]

ROOT_URLCONF = "portail.urls"
WSGI_APPLICATION = "portail.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # A region's own templates (PORTAIL_TEMPLATES_DIR) come first: pages/*.html overrides.
        "DIRS": [
            *(
                [Path(os.environ["PORTAIL_TEMPLATES_DIR"])]
                if os.environ.get("PORTAIL_TEMPLATES_DIR")
                else []
            ),
            BASE_DIR / "templates",
        ],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portail.security.context_processors.portail",
                "portail.pages.context_processors.brand",
            ],
        },
    },
]

# Widgets render with the project's templates (the password input with its eye button).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- Faults, health, metrics, logs ---------------------------------------------------------------

# Redis calls: connect and read timeout, and the longest wait for a pooled connection. Issue 8 §2:
# at most 100 ms, so a frozen Redis costs a request a few tenths of a second, not 5 s.
PORTAIL_CACHE_TIMEOUT_MS = env_int("PORTAIL_CACHE_TIMEOUT_MS", 100)
# Consecutive Redis errors after which the cache is skipped (circuit breaker open) ...
PORTAIL_CACHE_BREAKER_ERRORS = env_int("PORTAIL_CACHE_BREAKER_ERRORS", 3)
# ... for this many seconds, before one call probes Redis again.
PORTAIL_CACHE_BREAKER_SECONDS = env_int("PORTAIL_CACHE_BREAKER_SECONDS", 5)
# PostgreSQL: seconds to establish a connection (psycopg's minimum is 2).
PORTAIL_DB_CONNECT_TIMEOUT = env_int("PORTAIL_DB_CONNECT_TIMEOUT", 2)
# Longest statement the server runs (ms), 0 for none. A page's queries take milliseconds: 5 s in
# the web server's processes; none by default in batch commands, whose COPYs of a region's import
# and commit-time checks take longer.
_WEB_PROCESS = sys.argv[1:2] in (["serve"], ["runserver"]) or "gunicorn" in sys.argv[0]
PORTAIL_DB_STATEMENT_TIMEOUT_MS = env_int(
    "PORTAIL_DB_STATEMENT_TIMEOUT_MS", 5000 if _WEB_PROCESS else 0
)
# Seconds without a byte acknowledged before the kernel drops a connection (tcp_user_timeout):
# a black-holed network fails in seconds, not after the 15 minutes of TCP retransmissions.
PORTAIL_DB_TCP_USER_TIMEOUT = env_int("PORTAIL_DB_TCP_USER_TIMEOUT", 5)
# Client-side deadline on any wait for the server (s): past the statement timeout, the server is
# not answering at all (a proxy or pooler holding the connection); the connection is dropped.
PORTAIL_DB_WAIT_SECONDS = (
    PORTAIL_DB_STATEMENT_TIMEOUT_MS / 1000 + 1 if PORTAIL_DB_STATEMENT_TIMEOUT_MS else None
)
# Deadline of the SELECT 1 that checks a reused connection before a request (CONN_HEALTH_CHECKS).
PORTAIL_DB_HEALTH_CHECK_SECONDS = 1
# After a failed connection attempt, seconds during which requests get the 503 page at once.
PORTAIL_DB_BREAKER_SECONDS = env_int("PORTAIL_DB_BREAKER_SECONDS", 2)
# Addresses (CIDR, comma-separated) allowed to read /metrics; everyone else gets a 404.
PORTAIL_METRICS_ALLOWED = env_list("PORTAIL_METRICS_ALLOWED", ["127.0.0.0/8", "::1/128"])
# Log lines as JSON (one object per line) for the log collector; default: on in production.
PORTAIL_LOG_JSON = env_bool("PORTAIL_LOG_JSON", not DEBUG)

# --- Data -------------------------------------------------------------------------------------

# Database: an SQLite file by default; postgres://user@host:5432/name in production.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portail.sqlite3'}"),
        conn_max_age=env_int("PORTAIL_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
elif DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django's backend with a deadline on every wait and a connect breaker (ops.postgresql).
    DATABASES["default"]["ENGINE"] = "portail.ops.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": PORTAIL_DB_CONNECT_TIMEOUT,
            "options": f"-c statement_timeout={PORTAIL_DB_STATEMENT_TIMEOUT_MS}",
            # An idle connection to a vanished server is found dead in 10 + 3 × 2 s.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": PORTAIL_DB_TCP_USER_TIMEOUT * 1000,
            # Not "server_side_binding" (psycopg's prepared statements): measured with the SSO
            # endpoints, no gain the noise let see (bench/README.md, the api branch).
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Optional Redis (redis://host:6379/0): cache, sessions and rate limits shared by every node.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, every call bounded, errors are misses (ops.cache).
            "BACKEND": "portail.ops.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portail",
        }
    }
    # Read from Redis, written through to the database: an eviction or a Redis restart does not
    # log a whole region out, and logout or a password change still ends sessions everywhere.
    # Stored under a keyed hash of the cookie's key; a Redis error falls back to the database.
    SESSION_ENGINE = "portail.security.sessions_cached"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Database only (a per-process cache would miss logouts made by another worker).
    SESSION_ENGINE = "portail.security.sessions"

# --- Passwords and sessions -------------------------------------------------------------------

PASSWORD_HASHERS = [
    # The one hasher of the algorithm "argon2": Django verifies with the LAST hasher of an
    # algorithm name in this list, so Django's own Argon2PasswordHasher, listed here before, did
    # every verification instead of this one (same result; found in session 9).
    "portail.accounts.hashers.PortailArgon2PasswordHasher",
    # Verify-only hashes of accounts migrated from a former ENT; upgraded to the first (Argon2id)
    # at the next successful login.
    # Unsalted MD5/SHA-256 of a former ENT wrapped in Argon2id at import (never stored bare).
    "portail.accounts.hashers.WrappedLegacyMD5PasswordHasher",
    "portail.accounts.hashers.WrappedLegacySHA256PasswordHasher",
    "portail.accounts.hashers.LegacyBcryptPasswordHasher",
    "portail.accounts.hashers.LegacyMD5PasswordHasher",
    "portail.accounts.hashers.LegacySHA256PasswordHasher",
]
# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
PORTAIL_ARGON2_MEMORY_KIB = env_int("PORTAIL_ARGON2_MEMORY_KIB", 19 * 1024)
PORTAIL_ARGON2_TIME_COST = env_int("PORTAIL_ARGON2_TIME_COST", 2)
PORTAIL_ARGON2_PARALLELISM = env_int("PORTAIL_ARGON2_PARALLELISM", 1)

# "Se souvenir de moi": days a remembered session lasts. NIST 800-63B (AAL1): reauthenticate at
# least every 30 days.
PORTAIL_REMEMBER_ME_DAYS = env_int("PORTAIL_REMEMBER_ME_DAYS", 30)
# A session that is not remembered ends with the browser, and on the server after this many hours
# (a shared staff-room PC that is never closed still logs out by the next morning).
# Both lifetimes are absolute, counted from the login: use never extends them
# (portail/security/sessions.py).
PORTAIL_SESSION_HOURS = env_int("PORTAIL_SESSION_HOURS", 12)
SESSION_COOKIE_AGE = PORTAIL_SESSION_HOURS * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_NAME = "portail_session"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "portail.security.views.csrf_failure"

# Days an activation code (the first-connection password of the letters) stays valid.
PORTAIL_ACTIVATION_CODE_DAYS = env_int("PORTAIL_ACTIVATION_CODE_DAYS", 365)
# Days a "sortant" (absent from the last full import) keeps a working account before it is
# deactivated; personal data is erased 90 days after leaving (arrêté du 30 novembre 2006 modifié,
# art. 6: at most three months), by `portail process-leavers`.
PORTAIL_LEAVER_GRACE_DAYS = env_int("PORTAIL_LEAVER_GRACE_DAYS", 30)
# Mails « Nouvelle connexion à votre compte ENT » per account per 24 hours: a parent's phone,
# tablet and a school computer on one day; past it, logins are audited but not mailed, so that
# someone holding the password cannot flood the owner's mailbox (OWASP ASVS 5.0 §V2.4.1).
PORTAIL_NEW_DEVICE_MAILS_PER_DAY = env_int("PORTAIL_NEW_DEVICE_MAILS_PER_DAY", 3)
# Minutes a password reset link stays valid.
PORTAIL_RESET_LINK_MINUTES = env_int("PORTAIL_RESET_LINK_MINUTES", 60)
# Hardened mode: recovery pages answer neutrally and reveal nothing about accounts.
PORTAIL_NEUTRAL_RECOVERY_MESSAGES = env_bool("PORTAIL_NEUTRAL_RECOVERY_MESSAGES", False)

# Rate limits: (max attempts, window in seconds) per key, counted in sliding windows (the
# weighted two-bucket approximation: no window resets all at once). Counters live in the cache,
# so with REDIS_URL they are shared by every node. Cleared on success where a success proves the
# person. The login's own rules (account lockout, address budgets) are in "Login throttling".
PORTAIL_RATE_LIMITS = {
    # CNIL délibération n° 2022-100 (recommandation « mots de passe »), cas n° 2 (mot de passe
    # avec restriction d'accès au compte): at most 25 failed attempts per 24 hours per account,
    # sliding, for untrusted devices (each known device has its own). Kept in the database
    # (portail.security.models.LoginFailures), not in the cache: a Redis restart resets nothing.
    "login:account": (25, 24 * 3600),
    # Failed logins from untrusted devices at one address before its untrusted devices must solve
    # a proof-of-work challenge (never a refusal). A family or a café behind one NAT: 30 in 15 min
    # (OWASP ASVS 5.0 §V6.3.1: anti-automation without locking anyone out).
    "login:address": (30, 15 * 60),
    # The same for a declared school network (PORTAIL_SCHOOL_NETWORKS): 1,500 pupils logging in
    # at 8:00 with 30% mistyping once make ~450 failures in a few minutes; 600 leaves headroom.
    "login:school": (600, 15 * 60),
    # The activation page is reached only with a valid code in the session: each account may
    # submit it 10 times in 15 minutes (each submission costs a strength estimate). There is no
    # per-address rule: a whole school activates on the first morning from one address.
    "activation:identifier": (10, 15 * 60),
    # --- recovery throttling (rthrottle) ---
    # Lost-password and lost-identifier requests (first and second step) from untrusted devices
    # at one address, before its untrusted devices must solve the login's proof-of-work challenge
    # to be served; never a refusal (OWASP ASVS 5.0 §V2.4.1: anti-automation against excessive
    # calls to costly functions, here mail sending; §V6.1.1: controls that prevent malicious
    # lockout). A family or a class asking with its teacher: 20 in 15 minutes. Each account or
    # address still gets at most one mail per PORTAIL_RECOVERY_MAIL_MINUTES (the cadence).
    "recovery:address": (20, 15 * 60),
    # The same for a declared school network: on the first morning a few percent of 1,500 pupils
    # forget their password or identifier (~75 requests in minutes); 200 leaves headroom.
    "recovery:school": (200, 15 * 60),
    # Reset links that were not (or no longer) valid, and reset forms whose identifier is not the
    # link's account, from untrusted devices at one address: over it, opening a link and sending
    # the reset form need the challenge (ASVS 5.0 §V2.4.1). Old links clicked by mistake: 50.
    "reset:address": (50, 15 * 60),
    "reset:school": (500, 15 * 60),
    # Re-entering the current password on the account page.
    "account:user": (10, 15 * 60),
    # The strength meter asks the server as the user types.
    "strength:ip": (600, 10 * 60),
    # Console second factor (behind the password): 3 of 10^6 codes are valid at a time, so 10
    # tries an hour keep a guesser's odds under 1 in 1,000 a day (NIST 800-63B §5.2.2). A cache
    # error refuses (fail closed) rather than allow unlimited guessing.
    "console-otp:user": (10, 60 * 60),
}

# --- Sessions, hashes and costs at rest (atrest) ----------------------------------------------

# Strength analyses the anonymous meter runs at once per node (every worker counted): a flood
# gets quick refusals while the logins keep the other cores (issue 7 §3). Half the cores.
PORTAIL_STRENGTH_IN_FLIGHT = env_int(
    "PORTAIL_STRENGTH_IN_FLIGHT", max(1, (os.cpu_count() or 2) // 2)
)
# --- Login throttling ---------------------------------------------------------------------------

from portail.security.addresses import parse_networks, parse_school_networks  # noqa: E402

# Proxies whose X-Forwarded-For entries are believed (CIDR list), with PORTAIL_BEHIND_PROXY=1.
PORTAIL_TRUSTED_PROXIES = parse_networks(
    os.environ.get("PORTAIL_TRUSTED_PROXIES", "127.0.0.1/8,::1/128"),
    variable="PORTAIL_TRUSTED_PROXIES",
)
# Schools' egress addresses: "203.0.113.0/28=Lycée Claude Monet;198.51.100.7=Collège J. Moulin".
PORTAIL_SCHOOL_NETWORKS = parse_school_networks(os.environ.get("PORTAIL_SCHOOL_NETWORKS", ""))
# CNIL délibération 2022-100, cas n° 2: after 5 consecutive failures, a delay of more than one
# minute that grows: 2, 4, 8… minutes (doubling), capped at PORTAIL_LOGIN_MAX_DELAY_MINUTES.
PORTAIL_LOGIN_FAILURES_BEFORE_DELAY = env_int("PORTAIL_LOGIN_FAILURES_BEFORE_DELAY", 5)
# First delay (minutes) after those failures; doubles with each further failure.
PORTAIL_LOGIN_FIRST_DELAY_MINUTES = env_int("PORTAIL_LOGIN_FIRST_DELAY_MINUTES", 2)
# Longest single delay (minutes); the 25-per-24-hours cap bounds the total anyway.
PORTAIL_LOGIN_MAX_DELAY_MINUTES = env_int("PORTAIL_LOGIN_MAX_DELAY_MINUTES", 60)
# Days a device cookie (OWASP "device cookies") keeps a browser known for its accounts.
PORTAIL_DEVICE_COOKIE_DAYS = env_int("PORTAIL_DEVICE_COOKIE_DAYS", 365)
# Proof-of-work difficulty (ALTCHA max number): the browser tries on average half of it.
# 100,000 -> 50,000 SHA-256 on average. Measured by bench/challenge_cost.py (2 shared cores):
# Chromium's WebCrypto as challenge.js batches it does 40-60k digests/s, so ~1 s for a pupil;
# 1,000 junk logins then cost a browser-based flooder ~15-20 CPU-minutes, a Python script
# (~740k/s) ~1 CPU-minute, hand-tuned native code (~20M/s/core) a few seconds - and every
# solved attempt still meets the account lockout.
PORTAIL_CHALLENGE_MAX_NUMBER = env_int("PORTAIL_CHALLENGE_MAX_NUMBER", 100_000)
# Seconds a challenge stays solvable (and its solution is remembered, so it is single-use).
PORTAIL_CHALLENGE_SECONDS = env_int("PORTAIL_CHALLENGE_SECONDS", 10 * 60)

# --- Mail -------------------------------------------------------------------------------------

# Outgoing mail: smtp://host:port or smtp+tls://user:password@host:port. Unset: the dev mailbox,
# readable at /dev/mailbox/ when PORTAIL_DEBUG=1.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    globals().update(parse_email_url(EMAIL_URL))
else:
    EMAIL_BACKEND = "portail.mail.backends.MailboxBackend"
if not DEBUG:
    # In production a forgotten variable must stop the start, not fail silently: links in mail
    # would point to 127.0.0.1 (and HSTS stay off), and mail would land in the dev mailbox table.
    _missing = [name for name in ("PORTAIL_BASE_URL", "EMAIL_URL") if not os.environ.get(name)]
    if _missing:
        raise ImproperlyConfigured(
            f"{', '.join(_missing)} must be set (or PORTAIL_DEBUG=1 for the development setup)."
        )
# Sender of every email.
DEFAULT_FROM_EMAIL = os.environ.get("PORTAIL_FROM_EMAIL", "Portail ENT <ne-pas-repondre@ent.local>")
# Wake the mail workers as each email's transaction commits (PostgreSQL NOTIFY); a local backend
# (dev mailbox) delivers in-process. A request never talks to the SMTP relay. Off: the workers
# find new mail by polling (PORTAIL_MAIL_POLL_SECONDS).
PORTAIL_MAIL_DELIVER_ON_COMMIT = env_bool("PORTAIL_MAIL_DELIVER_ON_COMMIT", True)
# Attempts before a queued email is given up (each retried by `portail send-mail`).
PORTAIL_MAIL_MAX_ATTEMPTS = env_int("PORTAIL_MAIL_MAX_ATTEMPTS", 8)

# --- Mail queue (portail/mail/queue.py) ---------------------------------------------------------
# Seconds for the SMTP connect and for each command's answer. RFC 5321 §4.5.3.2 allows a relay
# minutes; ours is local, and a mail whose answer came late is retried with the same Message-ID.
EMAIL_TIMEOUT = env_int("PORTAIL_MAIL_SMTP_TIMEOUT", 5)
# Mails a worker reserves at once and sends over one SMTP connection.
PORTAIL_MAIL_BATCH_SIZE = env_int("PORTAIL_MAIL_BATCH_SIZE", 50)
# Seconds a reservation lasts: a worker that died mid-batch gives its mails back after this.
PORTAIL_MAIL_LEASE_SECONDS = env_int("PORTAIL_MAIL_LEASE_SECONDS", 300)
# Seconds `send-mail --loop` sleeps between looks at the queue when no NOTIFY wakes it.
PORTAIL_MAIL_POLL_SECONDS = env_int("PORTAIL_MAIL_POLL_SECONDS", 10)
# Longest wait between retries of one mail (the backoff doubles from 1 minute up to this).
PORTAIL_MAIL_MAX_BACKOFF_MINUTES = env_int("PORTAIL_MAIL_MAX_BACKOFF_MINUTES", 60)
# Days a sent email's row (recipient, subject; the body is erased at sending) and a failed one are
# kept before `portail send-mail --purge` deletes them (RGPD art. 5-1-e, storage limitation: the
# recipient is often a minor's or a parent's address; 30 days covers « je n'ai rien reçu »).
PORTAIL_MAIL_RETENTION_DAYS = env_int("PORTAIL_MAIL_RETENTION_DAYS", 30)

# --- Security headers -------------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
_HTTPS = PORTAIL_BASE_URL.startswith("https://")
# Cookies are Secure and HSTS is sent whenever the portal is served over HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _HTTPS or not DEBUG
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if _HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = False
SECURE_SSL_REDIRECT = _HTTPS and env_bool("PORTAIL_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^health/", r"^metrics$"]
if PORTAIL_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [PORTAIL_BASE_URL] if PORTAIL_BASE_URL.startswith("http") else []

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- Internationalisation and static files ----------------------------------------------------

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# The project's own CSS and JS (portail/ is not an app, so no finder would look there).
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
if not DEBUG:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"

from portail.ops.logs import logging_config  # noqa: E402

# JSON lines in production, plain text in development (ops.logs).
LOGGING = logging_config(
    json_lines=PORTAIL_LOG_JSON, level=os.environ.get("PORTAIL_LOG_LEVEL", "INFO")
)

# --- Single sign-on (CAS server, OpenID Connect provider) -------------------------------------

# Seconds a CAS service ticket stays valid. CAS 3.0 §3.1.1 allows up to 5 minutes and recommends
# far less; the client validates it server-to-server within a second.
PORTAIL_CAS_TICKET_SECONDS = env_int("PORTAIL_CAS_TICKET_SECONDS", 10)
# Hours a CAS proxy-granting ticket lives at most; it also dies with the portal session.
PORTAIL_CAS_PGT_HOURS = env_int("PORTAIL_CAS_PGT_HOURS", 12)
# Seconds the portal waits for a CAS proxy callback or a back-channel logout POST.
PORTAIL_CAS_CALLBACK_TIMEOUT = env_int("PORTAIL_CAS_CALLBACK_TIMEOUT", 3)
# CAS 3.0 §2.5.4 requires HTTPS proxy callbacks. For tests and development only, this lets a
# callback on http://127.0.0.1 through (also allowed when DEBUG is on); never in production.
PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK = env_bool("PORTAIL_CAS_ALLOW_HTTP_LOOPBACK_CALLBACK")

# --- CAS REST protocol (sso3) ---
# Seconds a CAS REST ticket-granting ticket lives from the password, never extended by use: a
# program asks its service tickets right after (Apereo's REST TGTs follow the SSO session's 8 h;
# shorter here because the password was given to a program, not typed in the portal).
PORTAIL_CAS_REST_TGT_SECONDS = env_int("PORTAIL_CAS_REST_TGT_SECONDS", 300)

from portail.sso.keys import inactive_keys, load_or_create_private_key  # noqa: E402

# django-oauth-toolkit's own models (named so that portail.sso can point at the client model).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
# Named so that portail.sso.AuthorizationTime can point at the toolkit's (swappable) Grant.
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    # The issuer is built from the configured base URL, never from the Host header.
    "OIDC_ISS_ENDPOINT": PORTAIL_BASE_URL + "/o",
    # RS256 signing key (PEM); see portail/sso/keys.py for generation and rotation.
    "OIDC_RSA_PRIVATE_KEY": os.environ.get("PORTAIL_OIDC_RSA_PRIVATE_KEY")
    or load_or_create_private_key(VAR_DIR / "oidc-rsa-private.pem"),
    # Keys being retired: still published in the JWKS so their ID tokens keep verifying.
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": inactive_keys(
        os.environ.get("PORTAIL_OIDC_RSA_PRIVATE_KEYS_INACTIVE", "")
    ),
    "OAUTH2_VALIDATOR_CLASS": "portail.sso.oidc.PortailOAuth2Validator",
    # The admin form of OIDC clients allows only the code flow and RS256.
    "APPLICATION_ADMIN_CLASS": "portail.sso.admin.OIDCClientAdmin",
    "SCOPES": {
        "openid": "Connexion OpenID Connect",
        "profile": "Nom et prénom",
        "email": "Adresse de messagerie",
        "ent": "Profil, établissements et classes dans l'ENT",
        # Accepted for relying parties that ask it (OIDC Core §11); refresh tokens are issued
        # with every code anyway, for PORTAIL_REMEMBER_ME_DAYS at most.
        "offline_access": "Accès prolongé (jeton de rafraîchissement)",
    },
    "DEFAULT_SCOPES": ["openid"],
    # Per client: only the scopes its attribute release list justifies.
    "SCOPES_BACKEND_CLASS": "portail.sso.oidc.PortailScopes",
    # Authorization code flow only: no implicit (RFC 9700 §2.1.2), no password grant (§2.4).
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    # client_credentials: only confidential clients given API scopes by an administrator
    # (Application.oidc_client_credentials_scopes).
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "refresh_token", "client_credentials"],
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    # RFC 9700 §4.3.2: access tokens only in the Authorization header, never in a URL.
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    # RFC 9207 (RFC 9700 §4.4): the authorization response names its issuer (mix-up defence).
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    # Access and refresh tokens stored hashed: a database dump holds no usable token.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    # Public clients (native apps, SPAs) authenticate with PKCE alone (RFC 8414 §2 "none").
    # private_key_jwt (RFC 7523 §2.2): a client whose public keys are registered (oidc_jwks).
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ],
    # PKCE, S256 only: "plain" is refused (RFC 9700 §2.1.1, RFC 7636 §4.2). Always for public
    # clients; per confidential client (Application.oidc_require_pkce, on by default).
    "PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    # OWASP ASVS 4.0 §10.4 (V51.2.x in 5.0): authorization codes live at most 10 minutes.
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 600,
    # Access tokens: one hour. ID tokens: 5 minutes, they are read once at login.
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "ID_TOKEN_EXPIRE_SECONDS": 300,
    # Refresh tokens rotate and a replayed one revokes the family (RFC 9700 §4.14.2); they last
    # as long as a remembered portal session (NIST 800-63B: reauthenticate every 30 days).
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_EXPIRE_SECONDS": PORTAIL_REMEMBER_ME_DAYS * 24 * 3600,
    # Registered redirect URIs match exactly. https; http only to the loopback address of a native
    # public client (RFC 8252 §7.3, any port); the private-use schemes of native apps listed in
    # PORTAIL_OIDC_NATIVE_SCHEMES (RFC 8252 §7.1, reverse domain). Checked by portail.sso.clients.
    "ALLOWED_REDIRECT_URI_SCHEMES": [
        "https",
        "http",
        *env_list("PORTAIL_OIDC_NATIVE_SCHEMES", []),
    ],
    # Client secrets: a keyed SHA-256 digest (portail.sso.secrets), not Argon2 on every request.
    "CLIENT_SECRET_HASHER": "portail_client_hmac_sha256",
    # RP-initiated logout (OIDC RP-Initiated Logout 1.0): ends the portal session, hence the
    # CAS single logout too.
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
}

# --- SSO privacy -------------------------------------------------------------------------------
import hashlib  # noqa: E402
import hmac  # noqa: E402

# Key of the pairwise subject identifiers (OIDC Core §8.1) and of the CAS « identifiant opaque »:
# HMAC-SHA256(key, sector + the account's immutable id). Set it once and never change it: every
# application would see new users. Unset, it is derived from PORTAIL_SECRET_KEY (so a rotation of
# the secret key would change every identifier: set this before going live).
PORTAIL_PAIRWISE_SALT = (
    os.environ.get("PORTAIL_PAIRWISE_SALT")
    or hmac.new(SECRET_KEY.encode(), b"portail-pairwise-subject", hashlib.sha256).hexdigest()
)
# Key of the keyed SHA-256 digest of OIDC client secrets (OWASP ASVS 5.0 V6.5.2: a standard hash
# suffices for secrets of 112 bits or more; the portal generates 256). Derived like the salt.
PORTAIL_CLIENT_SECRET_PEPPER = (
    os.environ.get("PORTAIL_CLIENT_SECRET_PEPPER")
    or hmac.new(SECRET_KEY.encode(), b"portail-client-secret", hashlib.sha256).hexdigest()
)
# Verify-only and new client secrets: the keyed digest (last, so never used for a password).
PASSWORD_HASHERS = [*PASSWORD_HASHERS, "portail.sso.secrets.ClientSecretHasher"]
# An id_token_hint at /o/logout/ is acted on up to this long after its expiry (the ID token
# itself lives 5 minutes): long enough for an application that logs out soon after login, short
# enough that an ID token found later in a log or a URL opens nothing (an older hint: the user is
# asked, nothing is revoked on the hint alone).
PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS = env_int("PORTAIL_OIDC_LOGOUT_HINT_GRACE_SECONDS", 3600)
PORTAIL_RATE_LIMITS.update(
    {
        # Failed client authentications at /o/token/ and /o/introspect/ per client_id (at one
        # address, so that nobody elsewhere can lock an application out): a guesser of a
        # 128-bit secret gains nothing, but each failure costs work (Argon2 for a secret not yet
        # upgraded). An application failing 30 times in 15 minutes is misconfigured.
        "token:client": (30, 15 * 60),
        # A school's or a server's address carries many applications: 120 failures per 15 min.
        "token:address": (120, 15 * 60),
    }
)

# --- Audit retention and imports (opsdeploy) ----------------------------------------------------
# Days the audit log keeps an event; `portail purge-audit` drops whole older months. CNIL
# (recommandation « journalisation », 2021): access logs are kept 6 months to 1 year.
PORTAIL_AUDIT_RETENTION_DAYS = env_int("PORTAIL_AUDIT_RETENTION_DAYS", 365)
# --- Serving (portail serve: admission control in front of Django) -----------------------------

# Largest request body accepted anywhere, refused with 413 before it is read or written to disk.
# OWASP ASVS 5.0 V5.2.1: accept only sizes the application can process without a denial of service.
PORTAIL_MAX_BODY_BYTES = env_int("PORTAIL_MAX_BODY_BYTES", 256 * 1024)
# The larger limit of the console's CSV import (5 MB file + multipart framing), with a session only.
PORTAIL_MAX_UPLOAD_BYTES = env_int("PORTAIL_MAX_UPLOAD_BYTES", 6 * 1024 * 1024)
# Paths that may receive the larger upload limit.
PORTAIL_UPLOAD_PATHS = env_list("PORTAIL_UPLOAD_PATHS", ["/console/import"])
# POSTs under these prefixes compute Argon2 and go through the per-process lane.
PORTAIL_EXPENSIVE_PATHS = env_list(
    "PORTAIL_EXPENSIVE_PATHS",
    [
        "/auth/login",
        "/auth/activation",
        "/auth/reset/",
        "/auth/lost-",
        # Not /o/token/: client secrets are a keyed SHA-256 digest now (SSO privacy block), so
        # a flood of bogus client credentials no longer queues in front of the logins.
        "/compte/mot-de-passe",
        "/cas/v1/tickets",
    ],
)
# Expensive requests run at once per process (each in a thread of its own; Argon2 releases the
# GIL). Two: connections do not spread evenly over the processes (the first awake accepts all that
# wait, keep-alive connections stay), and with one place a process holding every connection left
# the other core idle: half the capacity in about one bench/login.py run in three. Two places per
# process measured the same as one when the connections are spread (README « Serving under load »).
PORTAIL_EXPENSIVE_CONCURRENCY = env_int("PORTAIL_EXPENSIVE_CONCURRENCY", 2)
# An expensive request that waited longer than this for its lane is answered 503 without being
# computed: the client gets an answer within about a second, never works that nobody waits for.
PORTAIL_EXPENSIVE_QUEUE_MS = env_int("PORTAIL_EXPENSIVE_QUEUE_MS", 1000)
# Most expensive requests queued per process; beyond, 503 at once.
PORTAIL_EXPENSIVE_QUEUE_MAX = env_int("PORTAIL_EXPENSIVE_QUEUE_MAX", 200)
# Retry-After of a 503 (RFC 9110 §10.2.3), in seconds: the page says « dans une minute ».
PORTAIL_RETRY_AFTER_SECONDS = env_int("PORTAIL_RETRY_AFTER_SECONDS", 60)
# A psycopg pool per process keeps PostgreSQL connections open (Django 5.1+; CONN_MAX_AGE must be
# 0); Django's threads (PORTAIL_THREADS, portail/ops/bridge.py) take one per request. Under Django's
# ASGI handler of before every request ran in a context of its own and opened a connection (a
# backend fork, measured by bench/login.py). 0 turns the pool off (persistent connections as
# configured above, one per thread).
PORTAIL_DB_POOL_SIZE = env_int("PORTAIL_DB_POOL_SIZE", 8)
# Threads per `portail serve` process running Django (portail/ops/bridge.py): requests beyond wait
# on the event loop, costing no thread. As many as pooled connections, so none waits for one; at
# least two more than the expensive lane's places, so pages are served while logins hash.
PORTAIL_THREADS = env_int(
    "PORTAIL_THREADS", max(PORTAIL_DB_POOL_SIZE, PORTAIL_EXPENSIVE_CONCURRENCY + 2)
)
if PORTAIL_DB_POOL_SIZE and DATABASES["default"]["ENGINE"] in {
    "django.db.backends.postgresql",
    "portail.ops.postgresql",  # Django's backend with deadlines (faults): pooled connections too
}:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": PORTAIL_DB_POOL_SIZE,
        # Seconds a request waits for a free connection: short, so that an unreachable database
        # gives an error page within seconds rather than a hung request.
        "timeout": 3,
    }
# --- Recovery (issue 7: recovery that cannot harass or enumerate) ---
# At most one recovery mail (reset link, identifier reminder) per account or address in this
# many minutes: the owner waits for one mail anyway, a harasser gets at most 12 an hour instead
# of a flooded mailbox; the owner's own known device is never held back (OWASP ASVS 5.0 V6.3.1,
# anti-automation that does not lock the legitimate user out).
PORTAIL_RECOVERY_MAIL_MINUTES = env_int("PORTAIL_RECOVERY_MAIL_MINUTES", 5)

# --- First-connection credentials by email (issue 12) ---
# Validity of the « Activer mon compte » link mailed with the identifier (issue 12: 14 days).
PORTAIL_ACTIVATION_LINK_DAYS = env_int("PORTAIL_ACTIVATION_LINK_DAYS", 14)
# A second credentials mail to one account within this many hours needs an explicit choice.
PORTAIL_CREDENTIALS_RESEND_HOURS = env_int("PORTAIL_CREDENTIALS_RESEND_HOURS", 24)
# The region's name in the credentials mail (« l'ENT de la région … »); empty: a neutral wording.
PORTAIL_REGION_NAME = os.environ.get("PORTAIL_REGION_NAME", "")

# --- Brand and legal pages (issue 10) ---------------------------------------------------------
from portail.pages import brand as _brand  # noqa: E402  (pure Python, checked at startup)

# The brand: PORTAIL_REGION_NAME above (« ENT » alone when empty), a logo file served at
# /marque/logo, a primary colour that white text must be readable on (refused otherwise).
PORTAIL_LOGO = os.environ.get("PORTAIL_LOGO", "")
if PORTAIL_LOGO and not Path(PORTAIL_LOGO).is_file():
    raise ImproperlyConfigured(f"PORTAIL_LOGO={PORTAIL_LOGO!r}: file not found.")
if PORTAIL_LOGO and Path(PORTAIL_LOGO).suffix.lower() not in {
    ".svg",
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
}:
    raise ImproperlyConfigured("PORTAIL_LOGO: an .svg, .png, .jpg or .webp file.")
try:
    PORTAIL_COLOR_PRIMARY = _brand.check_primary_colour(os.environ.get("PORTAIL_COLOR_PRIMARY", ""))
    PORTAIL_ACCESSIBILITY_STATUS = _brand.check_accessibility_status(
        os.environ.get("PORTAIL_ACCESSIBILITY_STATUS", "")
    )
except _brand.BrandError as error:
    raise ImproperlyConfigured(str(error)) from None
# What the legal pages say; a region fills these (or overrides templates/pages/*.html).
PORTAIL_LEGAL = {
    "publisher": os.environ.get("PORTAIL_LEGAL_PUBLISHER", ""),
    "publisher_address": os.environ.get("PORTAIL_LEGAL_ADDRESS", ""),
    "director": os.environ.get("PORTAIL_LEGAL_DIRECTOR", ""),
    "host": os.environ.get("PORTAIL_LEGAL_HOST", ""),
    "contact_email": os.environ.get("PORTAIL_CONTACT_EMAIL", ""),
    "dpo_contact": os.environ.get("PORTAIL_DPO_CONTACT", ""),
    "accessibility_contact": os.environ.get("PORTAIL_ACCESSIBILITY_CONTACT", ""),
    "accessibility_audit": os.environ.get("PORTAIL_ACCESSIBILITY_AUDIT", ""),
}
# --- SAML 2.0 identity provider, GAR profile (issue 11 §1, portail.federation.idp) -------------
# PEM files of the IdP's signing key and certificate; unset: a self-signed pair under VAR_DIR.
PORTAIL_SAML_KEY = os.environ.get("PORTAIL_SAML_KEY", "")
PORTAIL_SAML_CERT = os.environ.get("PORTAIL_SAML_CERT", "")
# The IdP's entityID; unset: the metadata's address, PORTAIL_BASE_URL + /saml/metadata.
PORTAIL_SAML_ENTITY_ID = os.environ.get("PORTAIL_SAML_ENTITY_ID", "")
# idEnt of the GAR assertions: the ENT's code as the GAR registered it.
PORTAIL_GAR_ID_ENT = os.environ.get("PORTAIL_GAR_ID_ENT", "")
# Debian's xmlsec1, which pysaml2 calls to sign, check and encrypt.
PORTAIL_SAML_XMLSEC_BINARY = os.environ.get("PORTAIL_SAML_XMLSEC_BINARY", "/usr/bin/xmlsec1")
# Lifetime of an assertion (NotOnOrAfter), in seconds.
PORTAIL_SAML_ASSERTION_SECONDS = env_int("PORTAIL_SAML_ASSERTION_SECONDS", 300)
# Clock difference tolerated on the providers' requests, in seconds.
PORTAIL_SAML_CLOCK_SKEW_SECONDS = env_int("PORTAIL_SAML_CLOCK_SKEW_SECONDS", 60)
INSTALLED_APPS = [*INSTALLED_APPS, "portail.federation.idp"]
# Last: turns the portal's logout redirect into a page that carries the SAML LogoutRequests.
MIDDLEWARE = [*MIDDLEWARE, "portail.federation.idp.middleware.FrontChannelLogoutMiddleware"]
# --- Login with ÉduConnect (SAML SP) and FranceConnect (OIDC RP) (issue 11, federlogin) ---
# The IdP metadata of ÉduConnect: a file path or an https URL (fetched through sso.outbound's
# guard); empty: no « Se connecter avec ÉduConnect » button.
PORTAIL_EDUCONNECT_METADATA = os.environ.get("PORTAIL_EDUCONNECT_METADATA", "")
# The SP's signing key and certificate (PEM files); unset: self-signed, generated under var/.
PORTAIL_EDUCONNECT_KEY = os.environ.get("PORTAIL_EDUCONNECT_KEY", "")
PORTAIL_EDUCONNECT_CERT = os.environ.get("PORTAIL_EDUCONNECT_CERT", "")
# Attributes (name or OID) carrying the AAF jointure, tried in order; matched on external_id "aaf".
PORTAIL_EDUCONNECT_JOINTURE_ATTRIBUTES = env_list(
    "PORTAIL_EDUCONNECT_JOINTURE_ATTRIBUTES",
    ["FrEduCtRefId", "urn:oid:1.3.6.1.4.1.20326.10.999.1.57"],
)
# Clock skew tolerated on NotBefore / NotOnOrAfter, in seconds (SAML profiles §4.1.4.3).
PORTAIL_EDUCONNECT_CLOCK_SKEW = env_int("PORTAIL_EDUCONNECT_CLOCK_SKEW", 60)
# FranceConnect: issuer (discovery at {issuer}/.well-known/openid-configuration) and client.
PORTAIL_FRANCECONNECT_ISSUER = os.environ.get("PORTAIL_FRANCECONNECT_ISSUER", "").rstrip("/")
PORTAIL_FRANCECONNECT_CLIENT_ID = os.environ.get("PORTAIL_FRANCECONNECT_CLIENT_ID", "")
PORTAIL_FRANCECONNECT_CLIENT_SECRET = os.environ.get("PORTAIL_FRANCECONNECT_CLIENT_SECRET", "")
# Scopes asked of FranceConnect (openid is always there), and the acr_values demanded (eidas1).
PORTAIL_FRANCECONNECT_SCOPES = os.environ.get(
    "PORTAIL_FRANCECONNECT_SCOPES", "openid given_name family_name"
)
PORTAIL_FRANCECONNECT_ACR = os.environ.get("PORTAIL_FRANCECONNECT_ACR", "")
# Minutes a FranceConnect identity waits, in the session, for the parent's password to link it.
PORTAIL_FRANCECONNECT_LINK_MINUTES = env_int("PORTAIL_FRANCECONNECT_LINK_MINUTES", 10)
# Failed ÉduConnect / FranceConnect logins per address (OWASP ASVS 5.0 V6.3.1 anti-automation):
# a school's NAT with a misconfigured federation fails everyone's, so 60 in 15 minutes.
PORTAIL_RATE_LIMITS["federation:address"] = (60, 15 * 60)
# Tests only: let the federation's outbound calls reach 127.0.0.1 (never in production).
PORTAIL_FEDERATION_ALLOW_LOOPBACK = env_bool("PORTAIL_FEDERATION_ALLOW_LOOPBACK")
