"""SESSION_ENGINE with REDIS_URL: sessions read from Redis, written through to the database.

See portail.security.sessions (keyed hash at rest, absolute lifetime, cache errors never raise).
"""

from .sessions import CachedSessionStore as SessionStore

__all__ = ["SessionStore"]
