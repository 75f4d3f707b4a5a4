from django.conf import settings
from django.utils.cache import add_never_cache_headers


class ClientIPMiddleware:
    """request.client_ip: the peer, or the first hop the proxy saw when PORTAIL_BEHIND_PROXY."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        ip = request.META.get("REMOTE_ADDR")
        if settings.PORTAIL_BEHIND_PROXY:
            forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
            # The proxy appends the address it saw last: that one is the one it vouches for.
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            if hops:
                ip = hops[-1]
        request.client_ip = ip
        return self.get_response(request)


class NoStoreMiddleware:
    """Every page that shows or takes account data must not stay in a shared PC's cache."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(settings.STATIC_URL):
            add_never_cache_headers(response)  # Cache-Control: no-store (Django 5.2)
        return response
