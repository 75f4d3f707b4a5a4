"""One row and its to-one relations in one statement, the SQL written once per connection.

The SSO requests read a few rows by a unique column with select_related (the access token of a
bearer request with its client, the client's Portail application and its user; the code of a
token request with its user; a client with its Portail application). Django's ORM compiles such
a query at every call, and that compilation cost more CPU than the statement itself (issue 9
§6, bench/README.md: ~60% of userinfo). ``OneRow`` writes the same SELECT with LEFT OUTER JOINs
once per database connection from the models' metadata (quoted names; the looked-up value is a
parameter), and builds the instances with ``Model.from_db`` and each field's own converters,
the relations cached as select_related caches them (a missing reverse one-to-one caches None,
so reading it queries nothing). Only the SQL text is cached, never a row.
"""

from django.db import connections, router


class OneRow:
    def __init__(self, model, by, related=()):
        """``model`` (or a callable giving it, for swappable models), the unique field ``by``,
        and ``related``: to-one relation paths, as select_related takes them."""
        self._model = model
        self._by = by
        self._related = tuple(related)
        self._sql = {}  # connection alias -> (sql, layout)

    @property
    def model(self):
        return self._model if isinstance(self._model, type) else self._model()

    def _compile(self, alias):
        connection = connections[alias]
        quote = connection.ops.quote_name
        base = self.model
        # (table alias, model, parent index, relation field) for each joined table.
        tables = [("t0", base, None, None)]
        index_of = {"": 0}
        joins = []
        for path in self._related:
            parent_path, _, name = path.rpartition("__")
            parent = index_of[parent_path]
            parent_alias, parent_model = tables[parent][0], tables[parent][1]
            field = parent_model._meta.get_field(name)
            child = field.related_model
            child_alias = f"t{len(tables)}"
            if field.concrete:  # a foreign key or one-to-one from the parent
                on = (parent_alias, field.column, child_alias, child._meta.pk.column)
            else:  # the reverse of a one-to-one
                on = (child_alias, field.field.column, parent_alias, parent_model._meta.pk.column)
            joins.append(
                f" LEFT OUTER JOIN {quote(child._meta.db_table)} {quote(child_alias)}"
                f" ON {quote(on[0])}.{quote(on[1])} = {quote(on[2])}.{quote(on[3])}"
            )
            index_of[path] = len(tables)
            tables.append((child_alias, child, parent, field))
        columns, layout = [], []
        for table_alias, model, parent, field in tables:
            fields = list(model._meta.concrete_fields)
            converters = []
            for model_field in fields:
                col = model_field.get_col(table_alias)
                converters.append(
                    (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
                )
                columns.append(f"{quote(table_alias)}.{quote(model_field.column)}")
            attnames = [f.attname for f in fields]
            layout.append(
                (model, attnames, converters, fields.index(model._meta.pk), parent, field)
            )
        by = base._meta.get_field(self._by).column
        select = ", ".join(columns)
        sql = (
            f"SELECT {select} FROM {quote(base._meta.db_table)} {quote('t0')}"  # noqa: S608
            + "".join(joins)
            + f" WHERE {quote('t0')}.{quote(by)} = %s"
        )
        return sql, layout

    def get(self, value):
        """The row whose ``by`` is ``value`` with its relations cached, or None."""
        if isinstance(value, str) and "\x00" in value:
            # No stored value has one (PostgreSQL text cannot), and the driver would raise
            # (a NUL byte in a client_id: the toolkit's GH #1006).
            return None
        alias = router.db_for_read(self.model)
        if alias not in self._sql:
            self._sql[alias] = self._compile(alias)
        sql, layout = self._sql[alias]
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(sql, [value])
            row = cursor.fetchone()
        if row is None:
            return None
        instances, start = [], 0
        for model, attnames, converters, pk_index, parent, field in layout:
            values = row[start : start + len(attnames)]
            start += len(attnames)
            owner = instances[parent] if parent is not None else None
            if (parent is not None and owner is None) or values[pk_index] is None:
                instance = None  # the outer join found no row (or its parent is missing)
            else:
                converted = []
                for value_, (col, field_converters) in zip(values, converters, strict=True):
                    for converter in field_converters:
                        value_ = converter(value_, col, connection)
                    converted.append(value_)
                instance = model.from_db(alias, attnames, converted)
            if owner is not None:
                field.set_cached_value(owner, instance)
                if instance is not None and not field.concrete:
                    field.field.set_cached_value(instance, owner)  # the forward side too
            instances.append(instance)
        return instances[0]
