"""Test settings: production settings with a fixed test key (everything else from the environment)."""

import os

os.environ.setdefault("PORTAIL_SECRET_KEY", "test-secret-key-for-the-portail-test-suite-only")
os.environ.setdefault("PORTAIL_BASE_URL", "https://ent.example.test")
# Tests that read mail start their own SMTP server (tests/smtp.py); the rest use Django's locmem.
os.environ.setdefault("EMAIL_URL", "smtp://127.0.0.1:2525")

from portail.settings import *  # noqa: E402,F403

# Tests run without collectstatic: serve the source files.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# The test client speaks plain HTTP to testserver.
SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# Threads of the live servers close their connection after each request, so the test database
# can be dropped at the end of the run (persistent connections would keep it "in use").
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
