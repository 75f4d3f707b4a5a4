"""A model instance's INSERT compiled once per model, for the few writes every login makes.

Django compiles each `Model.save()` / `objects.create()` anew: ~0.25 ms of CPU per statement on
this machine (SQLInsertCompiler, the field list, the query object), several times the statement's
own cost (bench/README.md, « Login CPU »). `insert(obj)` asks Django's own compiler for the SQL
of that model once, then for each row only computes the values the same way Django does
(`field.pre_save` then `field.get_db_prep_save`, in the same field order) and reads back what the
database returns (the id). No `pre_save`/`post_save` signal is sent: use it only for models that
have no receivers (audit events, session rows: tests/test_statements.py checks it).
"""

from django.db import connections, router
from django.db.models import signals
from django.db.models.sql import InsertQuery

_compiled: dict = {}


def _statement(model, using: str):
    key = (model, using, connections[using].vendor)
    found = _compiled.get(key)
    if found is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
        returning = (
            meta.db_returning_fields
            if connections[using].features.can_return_columns_from_insert
            else []
        )
        query = InsertQuery(model)
        query.insert_values(fields, [model()])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = returning
        [(sql, _)] = compiler.as_sql()
        found = _compiled[key] = (sql, fields, returning)
    return found


def insert(obj) -> None:
    """INSERT the new instance `obj` (its pk, if any, given): as obj.save(force_insert=True)."""
    model = type(obj)
    if (
        model._meta.parents
        or signals.pre_save.has_listeners(model)
        or signals.post_save.has_listeners(model)
    ):
        obj.save(force_insert=True)  # what this shortcut does not do: Django's own path
        return
    using = router.db_for_write(model, instance=obj)
    connection = connections[using]
    sql, fields, returning = _statement(model, using)
    if returning and not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            row = cursor.fetchone()
            for field, value in zip(returning, row, strict=True):
                setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = using


_selects: dict = {}


def first(key: str, build, params: list):
    """`build(*params).first()` as a model instance (or None), its SQL compiled once per `key`.

    `build(*params)` returns the queryset for these values; the first call compiles it, and its
    compiled parameters must be `params` themselves, in order (one .filter() per value, in the
    order of `params`; LIMIT is in the SQL text): later calls only send the SQL with their own
    values. Converters are Django's own (SQLite's datetimes, JSON), as in `first()`.
    """
    from django.db import connection as default

    using = default.alias
    connection = connections[using]
    found = _selects.get((key, using, connection.vendor))
    if found is None:
        queryset = build(*params)
        compiler = queryset.query.get_compiler(using=using)
        sql, compiled = compiler.as_sql()
        if list(compiled) != list(params):
            raise ValueError(f"{key}: compiled parameters {compiled!r} are not {params!r}")
        columns = [column for column, _, _ in compiler.select]
        found = (
            sql,
            compiler,
            compiler.get_converters(columns),
            [column.target.attname for column in columns],
            queryset.model,
        )
        _selects[(key, using, connection.vendor)] = found
    sql, compiler, converters, names, model = found
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if converters:
        row = next(iter(compiler.apply_converters([row], converters)))
    return model.from_db(using, names, row)
