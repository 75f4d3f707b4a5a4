"""The access token of a bearer request (userinfo, introspection), read in one statement.

The toolkit's query (``select_related(...).filter(token_checksum=...).first()``) compiled by the
ORM at every request was ~60% of userinfo's CPU; rows.OneRow writes the same SELECT once.
"""

import hashlib

from oauth2_provider.models import get_access_token_model

from .rows import OneRow

_ACCESS_TOKEN = OneRow(
    get_access_token_model,
    "token_checksum",
    ("application", "application__portail_application", "user"),
)


def load_access_token(token: str):
    """The access token row for this raw token, with its client (and the client's Portail
    application, None when it has none) and its user; None when unknown."""
    return _ACCESS_TOKEN.get(hashlib.sha256(token.encode("utf-8")).hexdigest())
