from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher


class PortailArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with the cost set in settings (OWASP's m=19 MiB, t=2, p=1 by default).

    Django upgrades a stored hash whose parameters differ at the next successful login, so raising
    the cost in settings reaches every account without a migration.
    """

    algorithm = "argon2"

    @property
    def time_cost(self):
        return settings.PORTAIL_ARGON2_TIME_COST

    @property
    def memory_cost(self):
        return settings.PORTAIL_ARGON2_MEMORY_KIB

    @property
    def parallelism(self):
        return settings.PORTAIL_ARGON2_PARALLELISM
