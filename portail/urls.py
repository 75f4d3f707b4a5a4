from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView

from portail.accounts import views as account_views

handler400 = "portail.security.views.bad_request"
handler403 = "portail.security.views.permission_denied"
handler404 = "portail.security.views.page_not_found"
handler500 = "portail.security.views.server_error"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("auth/", include("portail.accounts.urls")),
    path("auth/", include("portail.activation.urls")),
    path("auth/", include("portail.recovery.urls")),
    path("compte/", include("portail.accounts.account_urls")),
    path("login", RedirectView.as_view(pattern_name="accounts:login", query_string=True)),
    path("healthz", lambda request: HttpResponse("ok", content_type="text/plain"), name="healthz"),
    path("admin/", admin.site.urls),
    # The dev mailbox answers 404 unless PORTAIL_DEBUG=1 with the mailbox backend.
    path("dev/mailbox/", include("portail.mail.urls")),
    path("console/", include("portail.console.urls")),
    path("", include("portail.sso.urls")),  # /cas/…, /o/… (OpenID Connect), /.well-known/…
]
