"""PostgreSQL: audit_event becomes a table partitioned by month (see portail/audit/partitions.py).

Existing events are copied into monthly partitions, from the month of the oldest one to three
months ahead; a default partition catches any other date. SQLite keeps the plain table.
"""

import datetime

from django.db import migrations

from portail.audit import partitions

MONTHS_AHEAD = 3


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT min(at) FROM audit_event")
        oldest = cursor.fetchone()[0]
        today = datetime.datetime.now(datetime.UTC).date()
        first = partitions.month_start(oldest or today)
        last = partitions.month_start(today)
        for _ in range(MONTHS_AHEAD):
            last = partitions.next_month(last)
        for sql in partitions.convert_sql():
            cursor.execute(sql)
        partitions.ensure_months(cursor, first, last)
        for sql in partitions.CONVERT_AFTER:
            cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_cursor_indexes")]
    # Not reversible: a partitioned log is not turned back into one table.
    operations = [migrations.RunPython(forwards, elidable=False)]
