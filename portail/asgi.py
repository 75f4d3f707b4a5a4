"""The ASGI application of `portail serve`: Django behind admission control (portail/ops/admission.py).

Django runs as a WSGI application in a bounded pool of threads, one hand-over per request
(portail/ops/bridge.py explains why not Django's ASGI handler).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portail.settings")
django_application = get_wsgi_application()

from django.conf import settings  # noqa: E402

from portail.ops.admission import Admission  # noqa: E402 (needs the settings configured above)
from portail.ops.bridge import WsgiBridge  # noqa: E402

application = Admission(WsgiBridge(django_application, settings.PORTAIL_THREADS))
