"""A model instance's INSERT compiled once per model, for the few writes every login makes.

Django compiles each `Model.save()` / `objects.create()` anew: ~0.25 ms of CPU per statement on
this machine (SQLInsertCompiler, the field list, the query object), several times the statement's
own cost (bench/README.md, « Login CPU »). `insert(obj)` asks Django's own compiler for the SQL
of that model once, then for each row only computes the values the same way Django does
(`field.pre_save` then `field.get_db_prep_save`, in the same field order) and reads back what the
database returns (the id). No `pre_save`/`post_save` signal is sent: use it only for models that
have no receivers (audit events, session rows: tests/test_statements.py checks it).

`later()` (below): a request's writes that may wait for its next INSERT on PostgreSQL, all sent
in one statement (a login's last_login, session index, audit event and session row).
"""

import contextlib

from django.db import IntegrityError, connections, router
from django.db.models import signals
from django.db.models.sql import InsertQuery

_compiled: dict = {}


def _statement(model, using: str, returns: bool = True):
    key = (model, using, connections[using].vendor, returns)
    found = _compiled.get(key)
    if found is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
        returning = (
            meta.db_returning_fields
            if returns and connections[using].features.can_return_columns_from_insert
            else []
        )
        query = InsertQuery(model)
        query.insert_values(fields, [model()])
        compiler = query.get_compiler(using=using)
        compiler.returning_fields = returning
        [(sql, _)] = compiler.as_sql()
        found = _compiled[key] = (sql, fields, returning)
    return found


def insert(obj, *, deferred: bool = False) -> None:
    """INSERT the new instance `obj` (its pk, if any, given): as obj.save(force_insert=True).

    The writes deferred on the connection (`later()`, below) go in the same statement.
    `deferred=True`: this INSERT may itself wait (`later()`): then what the database would
    return (the id) is not read, and `obj.pk` stays None when it was not given.
    """
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
    if deferred and deferring(connection):
        sql, fields, _ = _statement(model, using, returns=False)
        later(sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields], using)
        obj._state.adding = False
        obj._state.db = using
        return
    sql, fields, returning = _statement(model, using)
    if returning and not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True)
        return
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    pending = _take(connection)  # (only ever some on PostgreSQL: see later())
    folded_sql, folded_params = fold(pending, sql, params)
    try:
        with connection.cursor() as cursor:
            cursor.execute(folded_sql, folded_params)
            if returning:
                row = cursor.fetchone()
                for field, value in zip(returning, row, strict=True):
                    setattr(obj, field.attname, value)
    except IntegrityError:
        _put_back(connection, pending)  # nothing was written: they wait for the retry
        raise
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


# --- Deferred writes: a login's writes folded into one PostgreSQL statement ---
#
# A password login writes four rows (accounts_user.last_login, the open-sessions index, the audit
# event, the session row), each its own autocommit transaction: four round trips, four commits.
# On PostgreSQL, data-modifying statements can share one statement (`WITH a AS (UPDATE …),
# b AS (DELETE …) INSERT …`): one round trip, one commit, atomic together. So each app hands its
# write to `later()` (accounts, profile, audit: none knows the others' SQL), and the next write
# through `insert()` (the session row, saved by the response) carries them all.
#
# When a write is deferred: on PostgreSQL only, during a request that `DeferredWritesMiddleware`
# watches, outside any transaction (autocommit). Anywhere else `later()` runs the statement at
# once, as before (SQLite, management commands, an activation's transaction, tests' atomic blocks).
#
# Never lost, never reordered behind a read: a deferred write is sent
# - folded into the next `insert()` on that connection (the session row at the response);
# - before any other statement on that connection (an execute wrapper, present only while writes
#   wait): a read of those tables sees them, as it would have; if a transaction started in
#   between, they are written in it (first);
# - at the end of the request (`DeferredWritesMiddleware`, outside SessionMiddleware: a response
#   that saved no session, an error page).
# The sub-statements of one statement all see the same snapshot (none sees another's rows): only
# writes that do not read each other's rows are deferred (they were independent statements).
# A failure: the statement is atomic, so none of them was written. An IntegrityError of the
# insert that carried them (a session key already taken: the backend draws another and inserts
# again) puts them back for the retry; any other error (database lost) drops them with it, and the
# request answers the 503 page as before (its login wrote nothing).

_PENDING = "_portail_deferred_writes"
_WATCHED = "_portail_deferred_watched"


def _connection(using=None):
    from django.db import DEFAULT_DB_ALIAS

    return connections[using or DEFAULT_DB_ALIAS]


def deferring(connection) -> bool:
    """Whether a write handed to later() now would wait (see above)."""
    return (
        connection.vendor == "postgresql"
        and getattr(connection, _WATCHED, False)
        and not connection.in_atomic_block
    )


def later(sql: str, params, using=None) -> None:
    """Run this write (UPDATE, DELETE or INSERT, no RETURNING), or defer it (see above)."""
    connection = _connection(using)
    if not deferring(connection):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    pending = connection.__dict__.get(_PENDING)
    if not pending:
        pending = connection.__dict__[_PENDING] = []
        # Outermost wrapper (index 0): a wrapper of execute_wrapper()'s context manager, which
        # pops the last one, is never the one removed in its place.
        connection.execute_wrappers.insert(0, _flush_first)
    pending.append((sql, list(params)))


def pending_writes(using=None) -> list:
    """The writes waiting on this connection (tests)."""
    return list(_connection(using).__dict__.get(_PENDING) or [])


def _take(connection) -> list:
    pending = connection.__dict__.pop(_PENDING, None) or []
    if pending:
        with contextlib.suppress(ValueError):
            connection.execute_wrappers.remove(_flush_first)
    return pending


def _put_back(connection, pending) -> None:
    if not pending:
        return
    waiting = connection.__dict__.get(_PENDING)
    if waiting:
        waiting[:0] = pending
    else:
        connection.__dict__[_PENDING] = list(pending)
        connection.execute_wrappers.insert(0, _flush_first)


def fold(pending, sql: str, params: list) -> tuple[str, list]:
    """`WITH w0 AS (…), w1 AS (…) <sql>`: writes (`pending`, (sql, params) pairs, no RETURNING)
    and the statement `sql`, as one PostgreSQL statement (one snapshot, atomic together)."""
    if not pending:
        return sql, params
    parts = [f"w{i} AS ({write})" for i, (write, _) in enumerate(pending)]
    folded = [value for _, values in pending for value in values]
    return "WITH " + ", ".join(parts) + " " + sql, folded + list(params)


def flush(using=None, *, connection=None) -> None:
    """Send the writes waiting on this connection now, in one statement."""
    connection = connection or _connection(using)
    pending = _take(connection)
    if not pending:
        return
    (*first, (last, last_params)) = pending
    sql, params = fold(first, last, last_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _flush_first(execute, sql, params, many, context):
    # Another statement on this connection: the waiting writes go first (one statement).
    flush(connection=context["connection"])
    return execute(sql, params, many, context)


class DeferredWritesMiddleware:
    """Lets the request's writes wait for the session's INSERT (see above); sends what is left
    when the response is ready. Placed before (outside) SessionMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        connection = _connection()
        watched = getattr(connection, _WATCHED, False)
        setattr(connection, _WATCHED, True)
        try:
            response = self.get_response(request)
        finally:
            setattr(connection, _WATCHED, watched)
        flush(connection=connection)  # a failure: the 503 page (ops.middleware.server_error)
        return response
