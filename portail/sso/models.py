"""The applications of the home page and the CAS tickets Portail issues for them.

An Application is one tile of the home page, shown to the profiles and structures chosen by the
administrators. It signs its users in through CAS (a registry entry: which service URLs may get a
ticket, which attributes they receive) or through OpenID Connect (a django-oauth-toolkit client).
"""

import re
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from portail.accounts.models import Profile

# What an application may learn about its users: one list for CAS attributes and OIDC claims.
ATTRIBUTES = {
    "identifier": "Identifiant",
    "firstName": "Prénom",
    "lastName": "Nom",
    "displayName": "Nom affiché",
    "entProfile": "Profil",
    "uai": "UAI des établissements",
    "classes": "Classes",
    "email": "Adresse de messagerie",
}
# Released unless the administrator narrows it; the email address only on purpose.
DEFAULT_RELEASE = [name for name in ATTRIBUTES if name != "email"]


def default_release():
    return list(DEFAULT_RELEASE)


def default_profiles():
    return [value for value, _ in Profile.choices]


# %2e, %2f, %5c in a path: a dot or a slash the browser or the application may decode later, and
# so a dot segment that comparing the raw text would not see (CWE-22).
_ENCODED_DOT_OR_SLASH = re.compile(r"%(2e|2f|5c)", re.IGNORECASE)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: what a browser does to "." and ".." before requesting the URL."""
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if path.split("/")[-1] in (".", ".."):
        output.append("")  # "/a/b/.." is "/a/", a directory
    return "/" + "/".join(output) if path.startswith("/") else "/".join(output)


def normalized_service(service: str) -> str | None:
    """The service URL as the browser will reach it, or None when it cannot be trusted.

    The ticket is sent to the URL as given, and the browser resolves its dot segments: a pattern
    https://app.example.org/cas/ must not admit https://app.example.org/cas/../../other-app.
    Encoded dots, slashes or backslashes in the path, and backslashes anywhere before the
    query, are refused rather than guessed at.
    """
    parts = urlsplit(service)
    if "\\" in parts.path or "\\" in parts.netloc or _ENCODED_DOT_OR_SLASH.search(parts.path):
        return None
    return urlunsplit(parts._replace(path=_remove_dot_segments(parts.path)))


def _matches(pattern: str, service: str) -> bool:
    if pattern.startswith("^"):
        return re.fullmatch(pattern, service) is not None
    # A path boundary: https://app.example must not admit https://app.example.evil.
    return service == pattern or (
        service.startswith(pattern) and (pattern.endswith("/") or service[len(pattern)] in "/?#")
    )


class Application(models.Model):
    class Kind(models.TextChoices):
        CAS = "cas", "CAS"
        OIDC = "oidc", "OpenID Connect"

    name = models.CharField("nom", max_length=100)
    description = models.CharField("description courte", max_length=200, blank=True)
    short_label = models.CharField(
        "sigle de la tuile", max_length=4, help_text="Deux à quatre lettres affichées comme icône."
    )
    url = models.URLField("adresse d'entrée", max_length=500, help_text="Où mène la tuile.")
    enabled = models.BooleanField("active", default=True)
    position = models.PositiveSmallIntegerField("ordre", default=100)
    profiles = models.JSONField(
        "profils autorisés", default=default_profiles, blank=True, help_text="Vide : aucun profil."
    )
    structures = models.ManyToManyField(
        "directory.Structure",
        blank=True,
        related_name="applications",
        verbose_name="établissements autorisés",
        help_text="Vide : tous les établissements.",
    )
    kind = models.CharField("protocole", max_length=8, choices=Kind.choices)
    released_attributes = models.JSONField(
        "attributs transmis", default=default_release, blank=True
    )
    # CAS: one pattern per line. A line starting with ^ is a regular expression that must match
    # the whole service URL; any other line is a URL prefix, matched on a path boundary.
    cas_service_patterns = models.TextField("motifs d'URL de service CAS", blank=True)
    cas_allow_proxy = models.BooleanField("peut obtenir des tickets proxy (PGT)", default=False)
    cas_single_logout = models.BooleanField("déconnexion unique (SLO)", default=True)
    # CAS REST protocol (/cas/v1/tickets): a program posts the user's password to the portal for
    # this service. Off unless an administrator turns it on for a service that needs it.
    cas_rest_enabled = models.BooleanField(
        "protocole CAS REST (/cas/v1/tickets)",
        default=False,
        help_text="Pour une application sans navigateur qui envoie identifiant et mot de passe.",
    )
    # Privacy (OIDC Core §8.1): cas:user is then the pairwise identifier, as OIDC's sub; the
    # plain identifier only if released as the "identifier" attribute.
    cas_opaque_identifier = models.BooleanField(
        "identifiant opaque (CAS)",
        default=False,
        help_text="cas:user est un identifiant propre à cette application (ou à son secteur), "
        "qui ne permet pas de rapprocher deux applications. L'identifiant ENT reste "
        "transmissible comme attribut « Identifiant ».",
    )
    # OIDC Core §8.1 sector identifier: applications sharing it see the same pairwise identifiers.
    pairwise_sector = models.CharField(
        "secteur d'identifiant",
        max_length=200,
        blank=True,
        help_text="Vide : identifiants propres à cette application. Deux applications d'un même "
        "éditeur avec le même secteur (par exemple son nom de domaine) voient le même "
        "identifiant d'un utilisateur.",
    )
    oidc_client = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="portail_application",
        verbose_name="client OpenID Connect",
    )
    # OIDC Back-Channel Logout 1.0: where the portal POSTs a logout token when the user logs out.
    oidc_backchannel_logout_uri = models.URLField(
        "adresse de déconnexion back-channel (OIDC)", max_length=500, blank=True
    )
    # RFC 7636 / RFC 9700 §2.1.1: public clients always; a confidential one may be exempted.
    oidc_require_pkce = models.BooleanField(
        "PKCE exigé (OIDC)",
        default=True,
        help_text="Toujours exigé d'un client public ; à décocher seulement pour une application "
        "serveur (client confidentiel) qui ne sait pas le faire.",
    )
    # RFC 7523 §2.2 (private_key_jwt): the client's public keys, which sign its assertions.
    oidc_jwks = models.TextField(
        "clés publiques du client (JWKS, private_key_jwt)",
        blank=True,
        help_text="Vide : le client s'authentifie par son secret. Sinon le JWKS (JSON) de ses "
        "clés publiques : il s'authentifie par une assertion signée (private_key_jwt).",
    )
    # RFC 6749 §4.4: server-to-server tokens, with these scopes only.
    oidc_client_credentials_scopes = models.CharField(
        "portées client_credentials (OIDC)",
        max_length=300,
        blank=True,
        help_text="Vide : pas de client_credentials. Sinon les portées (séparées par des espaces) "
        "qu'un client confidentiel peut obtenir pour lui-même, sans utilisateur.",
    )

    class Meta:
        ordering = ["position", "name"]
        verbose_name = "application"

    def __str__(self):
        return self.name

    def clean(self):
        unknown = set(self.profiles or []) - {value for value, _ in Profile.choices}
        if unknown:
            raise ValidationError({"profiles": "Profil inconnu : " + ", ".join(sorted(unknown))})
        unknown = set(self.released_attributes or []) - set(ATTRIBUTES)
        if unknown:
            raise ValidationError(
                {"released_attributes": "Attribut inconnu : " + ", ".join(sorted(unknown))}
            )
        for line in self.service_patterns():
            if line.startswith("^"):
                try:
                    re.compile(line)
                except re.error as exc:
                    raise ValidationError(
                        {"cas_service_patterns": f"Expression invalide « {line} » : {exc}"}
                    ) from exc
            elif not line.startswith(("https://", "http://")):
                raise ValidationError(
                    {
                        "cas_service_patterns": f"« {line} » doit commencer par https:// "
                        "(http:// seulement pour un service interne)."
                    }
                )
        if self.kind == self.Kind.CAS and not self.service_patterns():
            raise ValidationError(
                {"cas_service_patterns": "Une application CAS a besoin d'au moins un motif."}
            )
        uri = self.oidc_backchannel_logout_uri
        if uri and not uri.startswith("https://"):
            from .outbound import loopback_allowed

            # Back-Channel Logout 1.0 §2.2: the RP's logout URI; the logout token travels in it.
            if not (uri.startswith("http://127.0.0.1") and loopback_allowed()):
                raise ValidationError(
                    {"oidc_backchannel_logout_uri": "L'adresse doit commencer par https://."}
                )
        if self.oidc_jwks.strip():
            from .client_assertions import jwks_problem

            problem = jwks_problem(self.oidc_jwks)
            if problem:
                raise ValidationError({"oidc_jwks": problem})
        scopes = set(self.client_credentials_scopes())
        known = set(settings.OAUTH2_PROVIDER["SCOPES"]) - {"openid", "offline_access"}
        if scopes - known:
            raise ValidationError(
                {
                    "oidc_client_credentials_scopes": "Portée inconnue : "
                    + ", ".join(sorted(scopes - known))
                }
            )
        if self.kind == self.Kind.OIDC and self.oidc_client_id is None:
            raise ValidationError(
                {"oidc_client": "Une application OpenID Connect a besoin d'un client."}
            )

    def client_credentials_scopes(self) -> list[str]:
        return self.oidc_client_credentials_scopes.split()

    def service_patterns(self) -> list[str]:
        return [line.strip() for line in self.cas_service_patterns.splitlines() if line.strip()]

    def matches_service(self, service: str) -> bool:
        # Both as sent and as the browser resolves it (dot segments): a pattern admits a service
        # only when the two forms match it.
        resolved = normalized_service(service)
        if resolved is None:
            return False
        return any(
            _matches(pattern, service) and _matches(pattern, resolved)
            for pattern in self.service_patterns()
        )

    def is_available_to(self, user) -> bool:
        if not self.enabled or user.profile not in (self.profiles or []):
            return False
        allowed = {s.pk for s in self.structures.all()}
        if not allowed:
            return True
        return bool(allowed & set(user.structures.values_list("pk", flat=True)))


class ServiceTicket(models.Model):
    """A CAS service ticket (ST-) or proxy ticket (PT-): single use, short-lived, stored hashed."""

    class Kind(models.TextChoices):
        SERVICE = "ST", "ticket de service"
        PROXY = "PT", "ticket proxy"

    kind = models.CharField(max_length=2, choices=Kind.choices, default=Kind.SERVICE)
    digest = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    service = models.TextField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The portal session it was issued in (proxy-granting tickets die with it).
    session_key = models.CharField(max_length=64, blank=True)
    # True when the user typed the password for this very ticket (CAS renew=true).
    from_credentials = models.BooleanField(default=False)
    # Issued in a session opened with "Se souvenir de moi" (CAS 3.0 §4.1.3
    # longTermAuthenticationRequestTokenUsed).
    remembered = models.BooleanField(default=False)
    # Proxy tickets: the chain of proxy callback URLs, most recent first (CAS 3.0 §2.6.2).
    proxies = models.JSONField(default=list, blank=True)
    # The answer prepared at issuance (identifier and released attributes), so that validation
    # is one DELETE … RETURNING. It lives at most the ticket's few seconds: validation deletes
    # the row, and expired rows are purged.
    identifier = models.CharField(max_length=64)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "ticket CAS"

    def __str__(self):
        # Never the ticket: only its kind and owner.
        return f"{self.kind} de {self.user_id} pour {self.application_id}"


class ProxyGrantingTicket(models.Model):
    """A CAS proxy-granting ticket (PGT-), delivered to an HTTPS callback, stored hashed."""

    digest = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The portal session it belongs to: it dies with that session (CAS 3.0 §3.3: a PGT ends with
    # the SSO session).
    session_key = models.CharField(max_length=64, blank=True, db_index=True)
    proxies = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "ticket CAS proxy-granting"

    def __str__(self):
        return f"PGT de {self.user_id} pour {self.application_id}"


class AuthorizationTime(models.Model):
    """When the user typed the password for the session an authorization code was issued in.

    OIDC Core §2: auth_time is the time of this End-User's authentication, i.e. this session's
    login, not User.last_login (which another browser may have moved). One row per code (dies
    with it), then one per refresh token family (purged with the family).
    """

    grant = models.OneToOneField(
        settings.OAUTH2_PROVIDER_GRANT_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        blank=True,
    )
    # OIDC Core §12.2: an ID token refreshed later keeps the original auth_time; the refresh
    # tokens of one code share this family (the toolkit's rotation).
    token_family = models.UUIDField(null=True, blank=True, db_index=True)
    auth_time = models.FloatField()
    # The portal session it was granted in (Back-Channel Logout §2.4 sid) and how the user
    # authenticated there (RFC 8176 amr), for the ID tokens of the code and of its refreshes.
    sid = models.CharField(max_length=64, blank=True, db_index=True)
    amr = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "heure d'authentification OIDC"

    def __str__(self):
        return f"auth_time du code {self.grant_id}"


class SpentCode(models.Model):
    """An authorization code already exchanged, and the refresh-token family it produced.

    RFC 6749 §4.1.2: a code presented twice is refused, and the server SHOULD revoke the tokens
    previously issued from it (a replay means the code leaked). The toolkit deletes the code on
    use, so this digest is what remembers it, for the code's own lifetime.
    """

    digest = models.CharField(max_length=64, unique=True)  # SHA-256 of the code
    client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    token_family = models.UUIDField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "code OIDC échangé"

    def __str__(self):
        return f"code échangé {self.digest[:8]}…"


class ClientAssertion(models.Model):
    """The jti of a private_key_jwt assertion already used (RFC 7523 §3: replay refused), kept
    until the assertion expires."""

    client = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    jti = models.CharField(max_length=200)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "assertion de client utilisée"
        constraints = [
            models.UniqueConstraint(fields=["client", "jti"], name="sso_client_assertion_once")
        ]

    def __str__(self):
        return f"assertion {self.jti[:8]}… du client {self.client_id}"


class SingleLogoutRecord(models.Model):
    """A (ticket, service) handed out with single logout on, kept per user and session.

    The portal session keeps the same list for its own logout; this copy lets blocking an account
    or resetting its password (which end sessions without a logout) notify the services too.
    The ticket is already consumed or expired when it is used here: it opens nothing, it only
    names the application's session (CAS 3.0 §2.3.3 SessionIndex).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=64, blank=True, db_index=True)
    ticket = models.CharField(max_length=100)
    service = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "session CAS à déconnecter"

    def __str__(self):
        return f"SLO de {self.user_id} pour {self.service[:60]}"
