"""The page that carries SAML LogoutRequests to the providers when the portal session ends.

SAML front-channel single logout (SAML Profiles §4.4, HTTP-Redirect binding): the LogoutRequests
are loaded by the browser, one hidden frame per provider, where the provider's session cookie is.
Whatever view ended the session (/auth/logout, /cas/logout, the OIDC end-session, a provider's
own SLO request), its redirect (or the « leaving » page for ÉduConnect or FranceConnect) becomes
this page, which then moves on to the same address.
"""

from django.shortcuts import render

from .services import origin
from .signals import FRONT_CHANNEL_ATTRIBUTE


def logout_page(request, frames, *, next_url=None, form=None):
    """`frames`: services.front_channel_requests's list ({"url", "origins", "loads"})."""
    response = render(
        request,
        "federation_idp/logout.html",
        {"frames": frames, "next_url": next_url, "form": form},
    )
    sources = sorted({o for frame in frames for o in frame["origins"]})
    update = {"frame-src": sources} if sources else {}
    if form is not None:
        update["form-action"] = [origin(form.url)]
    if update:
        response._csp_update = update  # django-csp: this page only
    return response


class FrontChannelLogoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        frames = getattr(request, FRONT_CHANNEL_ATTRIBUTE, None)
        if not frames:
            return response
        if response.status_code in (301, 302, 303) and response.has_header("Location"):
            return logout_page(request, frames, next_url=response["Location"])
        # A « leaving » page (federation.login.hooks.leaving_page: the logout of a session opened
        # through ÉduConnect or FranceConnect goes on there): the providers' frames first, then
        # the same address; else the resources would never hear of this logout.
        moves_on_to = getattr(response, "moves_on_to", None)
        if moves_on_to:
            return logout_page(request, frames, next_url=moves_on_to)
        return response
