"""ASGI entry point: HTTP, websockets and background channels in one router."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Set up Django before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from consumers.auth import websocket_auth  # noqa: E402
from jobs.concurrency import ServingLoop  # noqa: E402
from project import bodylimit  # noqa: E402
from project.embedded import EmbeddedWorkers  # noqa: E402
from routing import channel_router, websocket_urlpatterns  # noqa: E402

# daphne reads a whole request body before it calls any application: an
# oversized one is refused as it arrives instead (project/bodylimit.py).
bodylimit.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_auth(URLRouter(websocket_urlpatterns)),
        "channel": channel_router,
    }
)

if settings.EMBEDDED_WORKERS:
    application = EmbeddedWorkers(application)
# daphne's loop lives as long as the process: sends and events after a
# request's commit are handed to it instead of waited for.
application = ServingLoop(application)
