"""Creating accounts: identifiers as the region makes them, and first-connection codes."""

import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portail.security import tokens

from .identifiers import base_identifier, next_free_identifier
from .models import State, Token, User


def taken_identifiers(base: str) -> set[str]:
    """Identifiers already given that `base` could collide with: base itself and base2, base3…"""
    pattern = re.compile(re.escape(base) + r"[0-9]*")
    return {
        i
        for i in User.objects.filter(identifier__startswith=base).values_list(
            "identifier", flat=True
        )
        if pattern.fullmatch(i)
    }


def new_activation_token(user, now=None) -> tuple[Token, str]:
    """An unsaved activation Token and its code in clear (to print once, never stored)."""
    now = now or timezone.now()
    code = tokens.new_activation_code()
    token = Token(
        user=user,
        purpose=Token.Purpose.ACTIVATION,
        digest=tokens.digest(Token.Purpose.ACTIVATION, code),
        created_at=now,
        expires_at=now + timedelta(days=settings.PORTAIL_ACTIVATION_CODE_DAYS),
    )
    return token, code


@transaction.atomic
def issue_activation_code(user) -> str:
    """Send the account back to its first connection: old codes and password die."""
    Token.objects.filter(user=user, purpose=Token.Purpose.ACTIVATION).delete()
    user.set_unusable_password()
    user.state = State.PENDING
    user.end_all_sessions()
    user.save(update_fields=["password", "state", "session_stamp"])
    token, code = new_activation_token(user)
    token.save()
    return code


def create_account(first_name, last_name, profile, *, structures=(), classes=(), email=""):
    """Create a not-yet-activated account; return (user, activation code in clear)."""
    base = base_identifier(first_name, last_name)
    for _attempt in range(5):
        identifier = next_free_identifier(base, taken_identifiers(base))
        try:
            with transaction.atomic():
                user = User(
                    identifier=identifier,
                    first_name=first_name,
                    last_name=last_name,
                    profile=profile,
                    email=email,
                    state=State.PENDING,
                )
                user.set_unusable_password()
                user.save()
                user.structures.set(structures)
                user.classes.set(classes)
                token, code = new_activation_token(user)
                token.save()
                return user, code
        except IntegrityError:  # a concurrent import took the same identifier: take the next
            continue
    raise RuntimeError(f"could not allocate an identifier for {base}")
