"""The sessions open on the day the index arrives join it, so that « Se déconnecter de tous les
autres appareils » reaches them too. Their row names the session by the digest it is already
stored under; the account comes from the session's data (decoded with the project's key), the
time from its login mark; the device is unknown (the session never kept it)."""

from datetime import UTC, datetime

from django.db import migrations
from django.utils import timezone


def _decoders():
    """(salt, serializer) of each engine: Django salts session data with the store's class name."""
    from portail.security.sessions import CachedSessionStore, SessionStore

    serializer = SessionStore().serializer
    return [
        ("django.contrib.sessions." + c.__qualname__, serializer)
        for c in (SessionStore, CachedSessionStore)
    ]


def _decode(decoders, data):
    from django.core import signing

    for salt, serializer in decoders:
        try:
            return signing.loads(data, salt=salt, serializer=serializer)
        except Exception:  # noqa: BLE001, S112 - not this engine's, or unreadable: skip it
            continue
    return None


def index_open_sessions(apps, schema_editor):
    Session = apps.get_model("sessions", "Session")
    OpenSession = apps.get_model("profile", "OpenSession")
    User = apps.get_model("accounts", "User")
    decoders = _decoders()
    known = set(OpenSession.objects.values_list("stored_key", flat=True))
    rows = Session.objects.filter(expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data"
    )
    batch = []
    for stored_key, data in rows.iterator(chunk_size=2000):
        if stored_key in known:
            continue
        decoded = _decode(decoders, data) or {}
        user_id = decoded.get("_auth_user_id")
        if not user_id:
            continue  # not logged in (a reset or activation page's session)
        started = decoded.get("_portail_started_at")
        batch.append(
            (
                stored_key,
                int(user_id),
                datetime.fromtimestamp(started, tz=UTC) if started else timezone.now(),
            )
        )
    existing = set(User.objects.filter(pk__in={b[1] for b in batch}).values_list("pk", flat=True))
    OpenSession.objects.bulk_create(
        [
            OpenSession(stored_key=key, user_id=user_id, created_at=created)
            for key, user_id, created in batch
            if user_id in existing
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("profile", "0001_open_sessions_index"),
        ("sessions", "0001_initial"),
    ]

    operations = [migrations.RunPython(index_open_sessions, migrations.RunPython.noop)]
