"""First connection: the activation code opens the activation page, which makes the account active."""

import time

# Minutes the activation page stays open after the code was typed.
ACTIVATION_SESSION_SECONDS = 30 * 60


def begin_activation(request, result, *, remember: bool, next_url: str) -> None:
    """Remember, in a fresh session, whose code was just accepted; the activation page takes it."""
    request.session.flush()
    request.session["activation_user_id"] = result.user.pk
    request.session["activation_token_id"] = result.token.pk
    request.session["activation_started"] = int(time.time())
    request.session["activation_remember"] = bool(remember)
    request.session["activation_next"] = next_url
