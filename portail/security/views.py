from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template.loader import render_to_string


def csrf_failure(request, reason=""):
    return render(request, "errors/csrf.html", status=403)


def rate_limited(request, exc):
    response = render(request, "errors/429.html", {"minutes": exc.minutes}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def bad_request(request, exception=None):
    return render(request, "errors/400.html", status=400)


def permission_denied(request, exception=None):
    return render(request, "errors/403.html", status=403)


def page_not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def server_error(request):
    # Rendered without the request's context: no session or database access that could fail
    # again while reporting the first failure.
    return HttpResponseServerError(render_to_string("errors/500.html"))
