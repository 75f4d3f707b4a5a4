"""Wrap the unsalted MD5/SHA-256 hashes of accounts imported before in Argon2id (issue 7 §4).

After this, a dump shows no bare legacy digest: "legacy_md5$$<hex>" becomes
"argon2_legacy_md5$argon2id$…" over that hex digest (accounts.hashers.wrap_legacy), checked with one
Argon2id computation and replaced by plain Argon2id at the next successful login. One Argon2id
computation per account to wrap, spread on every core; there is no way back (the reverse leaves
them wrapped, which every later version verifies).
"""

import os
from concurrent.futures import ThreadPoolExecutor

from django.db import migrations
from django.db.models import Q

BATCH = 500


def wrap_existing(apps, schema_editor):
    from portail.accounts.hashers import wrap_legacy

    User = apps.get_model("accounts", "User")
    legacy = User.objects.filter(
        Q(password__startswith="legacy_md5$$") | Q(password__startswith="legacy_sha256$$")
    )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        while True:
            batch = list(legacy.only("pk", "password")[:BATCH])
            if not batch:
                break
            for user, wrapped in zip(
                batch, pool.map(wrap_legacy, [u.password for u in batch]), strict=True
            ):
                user.password = wrapped
            User.objects.bulk_update(batch, ["password"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_email_folded"),
    ]

    operations = [migrations.RunPython(wrap_existing, migrations.RunPython.noop, elidable=True)]
