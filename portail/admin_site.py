"""The Django admin, for the regional administrator, behind the portal's own door.

Its own login form would bypass the portal's rate limits, audit and identifier folding, and the
console's second factor: it is replaced by the portal login, then the console's TOTP check.
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse


def second_factor_checked(request) -> bool:
    from portail.console.views import SESSION_VERIFIED

    return request.session.get(SESSION_VERIFIED) == request.user.pk


class PortailAdminSite(admin.AdminSite):
    site_header = "Portail ENT — administration"
    site_title = "Portail ENT"

    def has_permission(self, request):
        return super().has_permission(request) and second_factor_checked(request)

    def login(self, request, extra_context=None):
        from django.contrib.auth.views import redirect_to_login  # needs the app registry

        next_url = request.GET.get("next") or reverse("admin:index")
        if not request.user.is_authenticated:
            return redirect_to_login(next_url, "accounts:login")
        if request.user.is_active and request.user.is_staff:
            return redirect(reverse("console:verify") + "?" + urlencode({"next": next_url}))
        raise PermissionDenied


class PortailAdminConfig(AdminConfig):
    default_site = "portail.admin_site.PortailAdminSite"
