"""URL matches of paths whose route captures nothing (/auth/login, /cas/serviceValidate…), kept.

Walking Django's URL patterns costs ~0.025–0.05 ms a request. Two places need the match of a path
on every request: the access log (admission control: may the path be logged as it is?) and the
back channel's short handler (ops.middleware: which view?). A path that captures nothing resolves
the same way until the URL configuration changes (tests swap it), so its match is kept, per
resolver and up to MAX_KEPT paths. A path that captures a value is never kept: it may carry a
token (/auth/reset/<token>), and there is no end to them.
"""

from django.urls import Resolver404, get_resolver

MAX_KEPT = 512

_kept: tuple = (None, {})  # (the resolver, {path: match})


def match(path: str, urlconf=None):
    """The ResolverMatch of `path` (None when no route matches), kept when it captures nothing.
    Read-only for the callers, as Django's own matches are for views."""
    global _kept
    resolver = get_resolver(urlconf)
    if _kept[0] is not resolver:
        _kept = (resolver, {})
    known = _kept[1]
    found = known.get(path)
    if found is not None:
        return found
    try:
        found = resolver.resolve(path)
    except Resolver404:
        return None
    if not found.args and not found.kwargs and len(known) < MAX_KEPT:
        known[path] = found
    return found


def plain_match(path: str, urlconf=None):
    """The ResolverMatch of `path` when its route captures nothing, else None."""
    found = match(path, urlconf)
    if found is None or found.args or found.kwargs:
        return None
    return found
