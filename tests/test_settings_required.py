import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "PORTAIL_SECRET_KEY": "k" * 50,
    "PORTAIL_BASE_URL": "https://ent.example.fr",
    "EMAIL_URL": "smtp://relay.example.fr:25",
}


def load_settings(**env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTAIL_", "EMAIL_URL", "DJANGO_SETTINGS_MODULE"))
    }
    return subprocess.run(
        [sys.executable, "-c", "import portail.settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


def test_production_settings_load_when_complete():
    result = load_settings(**PRODUCTION)
    assert result.returncode == 0 and result.stdout.strip() == "False"


@pytest.mark.parametrize("missing", ["PORTAIL_SECRET_KEY", "PORTAIL_BASE_URL", "EMAIL_URL"])
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_development_mode_needs_nothing():
    assert load_settings(PORTAIL_DEBUG="1").stdout.strip() == "True"
