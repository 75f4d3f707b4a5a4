"""User.email_folded: the folded address lost identifier looks up, filled for existing accounts."""

import unicodedata

from django.db import migrations, models

BATCH = 2000


def _fold(email):
    # A frozen copy of accounts.identifiers.fold_email as of this migration (migrations must
    # not move when the code does).
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email).casefold())
    return folded.strip()


def fill_email_folded(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    rows = User.objects.exclude(email="").order_by("pk").values_list("pk", "email")
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last)[:BATCH])
        if not batch:
            break
        User.objects.bulk_update(
            [User(pk=pk, email_folded=_fold(email)) for pk, email in batch], ["email_folded"]
        )
        last = batch[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_email_plain_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_folded",
            field=models.CharField(blank=True, default="", editable=False, max_length=254),
        ),
        migrations.RunPython(fill_email_folded, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["email_folded"], name="user_email_folded"),
        ),
    ]
