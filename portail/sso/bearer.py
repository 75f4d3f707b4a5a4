"""The access token of a bearer request (userinfo, introspection), read in one statement.

The toolkit's query for it (``AccessToken.objects.select_related(...).filter(...).first()``) is
compiled by Django's ORM at every request: with the user, the client and its Portail application
joined, that compilation was ~60% of userinfo's server CPU (issue 9 §6, bench/README.md). The
statement here is the same SELECT, written once per database connection from the models' own
metadata, and its rows are turned into model instances through ``Model.from_db`` with the
fields' own converters: the same objects, the same relations cached, no ORM compilation.

Revocation still takes effect at once: nothing is cached but the SQL text.
"""

import hashlib

from django.db import connections, router
from oauth2_provider.models import get_access_token_model, get_application_model

from .models import Application

# (model, the relation on the previous instance it hangs from): the order of the joins.
_PLAN = None
_SQL = {}  # connection alias -> (sql, [(model, [attnames], [per-field converters]) ...])


def _plan():
    global _PLAN
    if _PLAN is None:
        token, client = get_access_token_model(), get_application_model()
        _PLAN = (token, client, Application, token._meta.get_field("user").related_model)
    return _PLAN


def _compiled(alias):
    if alias not in _SQL:
        connection = connections[alias]
        quote = connection.ops.quote_name
        token, client, app, user = _plan()
        tables = (("t", token), ("c", client), ("a", app), ("u", user))
        columns, layout = [], []
        for table_alias, model in tables:
            fields = list(model._meta.concrete_fields)
            converters = []
            for field in fields:
                col = field.get_col(table_alias)
                converters.append(
                    (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
                )
                columns.append(f"{quote(table_alias)}.{quote(field.column)}")
            pk_index = fields.index(model._meta.pk)
            layout.append((model, [f.attname for f in fields], converters, pk_index))
        t_app = token._meta.get_field("application")
        t_user = token._meta.get_field("user")
        a_client = app._meta.get_field("oidc_client")
        # Only quoted names from the models' metadata; the token's digest is a parameter.
        select = ", ".join(columns)
        sql = (
            f"SELECT {select} FROM {quote(token._meta.db_table)} {quote('t')}"  # noqa: S608
            f" LEFT OUTER JOIN {quote(client._meta.db_table)} {quote('c')}"
            f" ON {quote('t')}.{quote(t_app.column)} = {quote('c')}.{quote(client._meta.pk.column)}"
            f" LEFT OUTER JOIN {quote(app._meta.db_table)} {quote('a')}"
            f" ON {quote('a')}.{quote(a_client.column)} = {quote('c')}.{quote(client._meta.pk.column)}"
            f" LEFT OUTER JOIN {quote(user._meta.db_table)} {quote('u')}"
            f" ON {quote('t')}.{quote(t_user.column)} = {quote('u')}.{quote(user._meta.pk.column)}"
            f" WHERE {quote('t')}.{quote(token._meta.get_field('token_checksum').column)} = %s"
        )
        _SQL[alias] = (sql, layout)
    return _SQL[alias]


def _instance(model, alias, attnames, converters, pk_index, values, connection):
    if values[pk_index] is None:
        return None  # the outer join found no row
    converted = []
    for value, (col, field_converters) in zip(values, converters, strict=True):
        for converter in field_converters:
            value = converter(value, col, connection)
        converted.append(value)
    return model.from_db(alias, attnames, converted)


def load_access_token(token: str):
    """The access token row for this raw token, with its client (and the client's Portail
    application, None when it has none) and its user; None when unknown."""
    model = _plan()[0]
    alias = router.db_for_read(model)
    connection = connections[alias]
    sql, layout = _compiled(alias)
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(sql, [checksum])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model, attnames, converters, pk_index in layout:
        values = row[start : start + len(attnames)]
        start += len(attnames)
        instances.append(
            _instance(model, alias, attnames, converters, pk_index, values, connection)
        )
    access, client, app, user = instances
    reverse = get_application_model()._meta.get_field("portail_application")
    if client is not None:
        reverse.set_cached_value(client, app)  # None: « no Portail application », no query
        if app is not None:
            Application._meta.get_field("oidc_client").set_cached_value(app, client)
    access._meta.get_field("application").set_cached_value(access, client)
    access._meta.get_field("user").set_cached_value(access, user)
    return access
