"""The HTTP servers: SIGNL4 outbound webhooks and probes (public), and the operator console with metrics.

Public listener (``[server]``, built by ``build_web_app``):

* ``POST /webhooks/signl4/{connector}/{token}``: SIGNL4 outbound webhooks into the inbox (``webhook.py``).
* ``GET /healthz``, ``GET /readyz``: probes (``health.py``).

Console listener (``[console]``, loopback by default, built by ``build_console_app``; see ``console_app.py``):
sign-in, overview, connector pages with retry/discard, the status page and ``status.json``, ``GET /metrics``.

``WebServer`` (``server.py``) serves the app with uvicorn until the supervisor's stop event is set.
"""

from sentinel_signl4.web.app import build_console_app_for, build_web_app, build_web_app_from_context, web_context
from sentinel_signl4.web.console_app import build_console_app
from sentinel_signl4.web.context import WebContext
from sentinel_signl4.web.server import WebServer, WebServerError
from sentinel_signl4.web.webhook import WEBHOOK_PREFIX, WebhookUrlError, webhook_url

__all__ = [
    "WEBHOOK_PREFIX",
    "WebContext",
    "WebServer",
    "WebServerError",
    "WebhookUrlError",
    "build_console_app",
    "build_console_app_for",
    "build_web_app",
    "build_web_app_from_context",
    "web_context",
    "webhook_url",
]
