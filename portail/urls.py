from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from portail.ops import health, metrics
from portail.sso.home import home

handler400 = "portail.security.views.bad_request"
handler403 = "portail.security.views.permission_denied"
handler404 = "portail.security.views.page_not_found"
# A lost database is a 503 « service momentanément indisponible », anything else the 500 page.
handler500 = "portail.ops.middleware.server_error"

urlpatterns = [
    path("", home, name="home"),
    path("auth/", include("portail.accounts.urls")),
    path("auth/", include("portail.activation.urls")),
    path("auth/", include("portail.recovery.urls")),
    path("compte/", include("portail.profile.urls")),
    path("login", RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    # For load balancers (ops.health); /healthz is the former name of /health/live.
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("healthz", health.live, name="healthz"),
    # Prometheus, to the addresses of PORTAIL_METRICS_ALLOWED only (ops.metrics).
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # The dev mailbox answers 404 unless PORTAIL_DEBUG=1 with the mailbox backend.
    path("dev/mailbox/", include("portail.mail.urls")),
    path("console/", include("portail.console.urls")),
    path("", include("portail.pages.urls")),  # /mentions-legales, /accessibilite, /charte…
    path("saml/", include("portail.federation.idp.urls")),  # SAML 2.0 IdP (GAR), issue 11
    path("federation/", include("portail.federation.login.urls")),  # ÉduConnect, FranceConnect
    path("", include("portail.sso.urls")),  # /cas/…, /o/… (OpenID Connect), /.well-known/…
]
