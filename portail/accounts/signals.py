"""last_login, written at every login by one precompiled UPDATE instead of Django's receiver."""

from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in
from django.db import connection
from django.utils import timezone

from portail.ops import statements


def note_last_login(sender, user, **kwargs):
    """Django's update_last_login (user.last_login = now, saved) without the model's save().

    `user.save(update_fields=["last_login"])` compiles an UPDATE and sends pre_save/post_save,
    whose only receivers (sso.signals) watch session_stamp and state, not last_login: ~0.2 ms of
    CPU per login for one column (bench/README.md, « Login CPU »).
    """
    now = timezone.now()
    # On PostgreSQL, during a request, it goes with the session's INSERT (ops.statements.later).
    statements.later(
        "UPDATE accounts_user SET last_login = %s WHERE id = %s",
        [connection.ops.adapt_datetimefield_value(now), user.pk],
    )
    user.last_login = now


def connect():
    # Replaces django.contrib.auth's receiver (connected under this dispatch_uid when the user
    # model has last_login), so that the column is written once.
    user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
    user_logged_in.connect(note_last_login, dispatch_uid="portail.accounts.last_login")
