"""Operational routes: ``GET /healthz`` (and ``HEAD``, open to all) and ``GET /metrics`` (Prometheus text)."""
from tubeway.broker.http.base import BaseHandler, routes_with_slash
from tubeway.core.errors import TubewayError

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_TIMEOUT = 1.0


class HealthHandler(BaseHandler):
    """200 once the broker answers and at least one worker is connected, else 503."""

    open_methods = frozenset({"GET", "HEAD"})

    async def head(self):
        """The same answer without its body (load balancers probe with HEAD)."""
        await self.get()

    async def get(self):
        try:
            health = await self.broker.health(timeout=HEALTH_TIMEOUT)
        except TubewayError as exc:
            self.reply({"status": "unavailable", "reason": f"broker: {exc.message or exc.code}"}, 503)
            return
        workers = health.get("workers", 0) if isinstance(health, dict) else 0
        if workers >= 1:
            self.reply({"status": "ok", "workers": workers})
        else:
            self.reply({"status": "unavailable", "reason": "no worker connected"}, 503)


class MetricsHandler(BaseHandler):
    """The broker's metrics in the Prometheus exposition format."""

    async def get(self):
        text = (await self.broker.metrics())["text"]
        self.set_header("Content-Type", PROMETHEUS_TYPE)
        self.write(text.encode("utf-8") if isinstance(text, str) else text)


def routes():
    """The operational routes."""
    return routes_with_slash([
        (r"/healthz", HealthHandler),
        (r"/metrics", MetricsHandler),
    ])
