"""The Tornado application of the HTTP front end, and the process that serves it.

:class:`TubewayApp` holds what every handler shares (settings, broker client,
plugin manager); :func:`serve` runs one front-end process. Several processes may
serve one port: each binds it with ``SO_REUSEPORT``.
"""
import asyncio
import importlib
import logging
import signal

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from tubeway.broker.http.auth import check_exposure, configured_tokens
from tubeway.broker.http.base import (
    DEFAULT_MAX_BODY, DRAIN_BYTES, BaseHandler, NotFoundHandler, routes_with_slash,
)
from tubeway.core.client import AsyncBrokerClient
from tubeway.core.errors import ConfigError
from tubeway.core.settings import split_host_port

log = logging.getLogger("tubeway.http")

PACKAGE = "tubeway.broker.http"
#: Modules of this package exposing ``routes()``, in matching order: the dialects that
#: ship. Each must import; one that does not stops the front end at start.
DIALECTS = ("native", "accepted", "queue_task", "arangodb", "cloudfoundry", "bullmq", "metrics")
SHUTDOWN_GRACE = 5.0


class TubewayApp(tornado.web.Application):
    """The front end's Tornado application.

    ``config`` is the Tubeway settings object (Tornado keeps its own dict in
    ``settings``), ``client`` the broker client, ``plugins`` the plugin manager.
    """

    def __init__(self, settings, client, plugins, rules):
        self.config = settings
        self.client = client
        self.plugins = plugins
        self.tokens = configured_tokens(settings)
        self.max_body_size = int(getattr(settings, "max_body_size", None) or DEFAULT_MAX_BODY)
        self.drain_bytes = DRAIN_BYTES
        super().__init__(rules, default_handler_class=NotFoundHandler, serve_traceback=False)


def dialect_modules():
    """The modules of :data:`DIALECTS`, imported; a ConfigError naming the first that fails to import."""
    modules = []
    for name in DIALECTS:
        full_name = f"{PACKAGE}.{name}"
        try:
            modules.append(importlib.import_module(full_name))
        except Exception as exc:  # a dialect missing or broken is a broken build, never a dialect skipped
            raise ConfigError(f"http: the dialect module {full_name} failed to import "
                              f"({type(exc).__name__}: {exc}); the front end cannot serve without it",
                              setting="http") from exc
    return modules


def collect_routes(settings, plugins):
    """The built-in dialects' rules, then the plugins' (built-ins win a tie)."""
    rules = []
    for module in dialect_modules():
        rules.extend(module.routes())
    return rules + (_plugin_routes(settings, plugins) if plugins is not None else [])


def _plugin_routes(settings, plugins):
    rules = routes_with_slash(plugins.http_routes(settings) or [])
    for rule in rules:
        pattern, handler = rule[:2] if isinstance(rule, (tuple, list)) else (rule, getattr(rule, "target", None))
        if isinstance(handler, type) and not issubclass(handler, BaseHandler):
            log.warning("plugin route %s: %s does not subclass %s.base.BaseHandler, so it has "
                        "no authentication and no body limit", pattern, handler.__name__, PACKAGE)
    return rules


def make_app(settings, client, plugins):
    """Build the application serving every dialect over ``client``."""
    return TubewayApp(settings, client, plugins, collect_routes(settings, plugins))


def server_options(settings):
    """Keyword arguments for the :class:`~tornado.httpserver.HTTPServer` of an app."""
    limit = int(getattr(settings, "max_body_size", None) or DEFAULT_MAX_BODY)
    # Handlers raise the per-connection limit themselves to answer 413; this bound
    # only applies to requests no handler streams.
    return {"max_body_size": limit + DRAIN_BYTES, "xheaders": False, "decompress_request": False}


def parse_address(value):
    """``"HOST:PORT"`` (``[v6]:PORT`` too) as ``(host, port)``; ConfigError naming ``http`` if bad."""
    try:
        return split_host_port(value or "")
    except ValueError as exc:
        raise ConfigError(f"http: {exc}", setting="http") from None


def _setup_logging(settings):
    """Set up logging for this role; return a function logging one line per startup fact."""
    level = getattr(settings, "log_level", "INFO")
    try:
        from tubeway.core import logs
    except ImportError:
        logging.basicConfig(level=str(level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    else:
        logs.setup_logging("http", level)
        return lambda facts: logs.startup_facts("http", facts)

    def log_facts(facts):
        for name, value in facts:
            log.info("%s: %s", name, value)
    return log_facts


def serve(settings):
    """Run one front-end process until SIGTERM or SIGINT, then stop cleanly."""
    facts = _setup_logging(settings)
    host, port = parse_address(settings.http)
    check_exposure(host, settings)
    dialect_modules()  # fail at start, before anything is bound or started
    from tubeway.plugins.manager import PluginManager

    plugins = PluginManager.load(settings)
    asyncio.run(_serve(settings, plugins, host, port, facts))


async def _serve(settings, plugins, host, port, facts):
    client = AsyncBrokerClient(settings.broker, timeout=settings.request_timeout)
    server = HTTPServer(make_app(settings, client, plugins), **server_options(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    plugins.startup("http", settings)
    try:
        sockets = bind_sockets(port, host, reuse_port=True)
        server.add_sockets(sockets)
        facts([("listening", _url(sock.getsockname())) for sock in sockets]
              + [("broker", settings.broker), ("plugins", ", ".join(plugins.names()) or "none")])
        await stop.wait()
        log.info("stopping")
    finally:
        server.stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE)
        except asyncio.TimeoutError:
            log.warning("connections still open after %.0f s; closing anyway", SHUTDOWN_GRACE)
        plugins.shutdown("http", settings)
        client.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _url(address):
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
