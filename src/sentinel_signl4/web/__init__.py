"""The HTTP server: SIGNL4 outbound webhooks, probes, metrics and the status page.

Routes (built by ``build_web_app``):

* ``POST /webhooks/signl4/{connector}/{token}``: SIGNL4 outbound webhooks into the inbox (``webhook.py``).
* ``GET /healthz``, ``GET /readyz``, ``GET /metrics``: probes and Prometheus metrics (``health.py``).
* ``GET /``, ``GET /status``, ``GET /status.json``: the status page (``dashboard.py``).

``WebServer`` (``server.py``) serves the app with uvicorn until the supervisor's stop event is set.
"""

from sentinel_signl4.web.app import build_web_app, build_web_app_from_context
from sentinel_signl4.web.context import WebContext
from sentinel_signl4.web.server import WebServer, WebServerError
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX, WebhookUrlError, webhook_url

__all__ = [
    "WEBHOOK_PREFIX",
    "WebContext",
    "WebServer",
    "WebServerError",
    "WebhookUrlError",
    "build_web_app",
    "build_web_app_from_context",
    "webhook_url",
]
