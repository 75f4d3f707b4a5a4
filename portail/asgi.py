"""The ASGI application of `portail serve`: Django behind admission control (portail/ops/admission.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")
django_application = get_asgi_application()

from portail.ops.admission import Admission  # noqa: E402 (needs the settings configured above)

application = Admission(django_application)
