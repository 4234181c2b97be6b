"""The registry of Tubeway's settings: each one's name, default, type, bounds and help.

:mod:`tubeway.core.settings` loads values for them; this module only says what
they are. Add a setting here and it gets an environment variable, a flag, a row in
``tubeway settings`` and in the README table.
"""
import dataclasses
import ipaddress
from typing import Any, Callable, Optional

from tubeway.core.protocol import MAX_CREDIT

ENV_PREFIX = "TUBEWAY_"
SOURCES = ("default", "config", "env", "cli")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its name, default, type (str, int, float, bool or list of str) and one line of help.

    ``optional`` admits None; ``env_aliases`` are extra environment names read after
    ``TUBEWAY_<NAME>``; ``flag`` overrides the command line flag (``--<name>``);
    ``choices`` and ``minimum`` bound the value; ``check`` validates it further
    (returns an error message or None); ``secret`` hides the value when printed.
    """

    name: str
    default: Any
    type: str
    help: str
    optional: bool = False
    env_aliases: tuple = ()
    flag: Optional[str] = None
    choices: Optional[tuple] = None
    minimum: Optional[float] = None
    check: Optional[Callable[[Any], Optional[str]]] = None
    secret: bool = False

    @property
    def env_names(self):
        """Environment variables read for this setting, strongest first."""
        return (ENV_PREFIX + self.name.upper(),) + tuple(self.env_aliases)

    @property
    def cli_flag(self):
        """The command line flag that sets it."""
        return self.flag or "--" + self.name.replace("_", "-")


def split_host_port(value):
    """``"host:port"`` (or ``"[v6]:port"``) as ``(host, port)``; raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def is_loopback(host):
    """True for 127.x, ::1 and localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_endpoint(endpoint):
    """True for a ZeroMQ endpoint only this host reaches: ``ipc://``, ``inproc://``, or tcp on a loopback address.

    A tcp host is taken as written (``*``, an interface name or another host name is
    not loopback; only ``localhost`` is, as in :func:`is_loopback`).
    """
    scheme, sep, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp" or not sep:
        return False
    host = rest.rpartition(":")[0]
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bool(host) and is_loopback(host)


def _check_http(value):
    try:
        split_host_port(value)
    except ValueError as exc:
        return str(exc)


def _check_broker(value):
    if not value.startswith(("tcp://", "ipc://", "inproc://")):
        return f"expected a ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH), got {value!r}"


def _check_db(value):
    if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return f"expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB, got {mask_url(value)!r}"


def mask_url(value):
    """A database URL with its password hidden."""
    scheme, sep, rest = value.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return value
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def _check_allowed_hosts(value):
    for entry in value:
        name = entry[2:] if entry.startswith("*.") else entry
        if not name.strip(".") or any(c in name for c in "*/?#@ \t"):
            return f"expected host names or *.SUFFIX patterns, got {entry!r}"


S = Setting
#: Every setting, in the order ``tubeway settings`` prints them.
APP_KEYS = {"dir": str, "env": dict, "memory_in_mb": int, "disk_in_mb": int,
            "log_rate_limit_in_bytes_per_second": int, "space_guid": str, "organization_guid": str}


def _check_apps(apps):
    """None if every app table holds only known keys of the right types, else the problem."""
    for guid, app in apps.items():
        if not isinstance(app, dict):
            return f"apps.{guid} must be a table"
        for key, value in app.items():
            kind = APP_KEYS.get(key)
            if kind is None:
                return f"apps.{guid} has an unknown key '{key}' (known: {', '.join(APP_KEYS)})"
            if not isinstance(value, kind) or isinstance(value, bool):
                return f"apps.{guid}.{key} must be {'a table of strings' if kind is dict else kind.__name__}"
        if not all(isinstance(v, str) for v in (app.get("env") or {}).values()):
            return f"apps.{guid}.env values must be strings"
    return None


SETTINGS = (
    S("data_dir", ".tubeway", "str", "Directory for the SQLite database and other local state."),
    S("http", "127.0.0.1:8080", "str", "HOST:PORT the HTTP front end listens on.", check=_check_http),
    S("broker", "tcp://127.0.0.1:5555", "str", "ZeroMQ endpoint the broker binds and the others connect to.",
      check=_check_broker),
    S("db", None, "str",
      "Database URL: sqlite:///PATH or postgresql://USER@HOST:PORT/DB (default: SQLite in data_dir).",
      optional=True, check=_check_db),
    S("processes", 2, "int", "Worker processes in the pool.", minimum=0),
    S("http_processes", 1, "int", "HTTP front end processes (they share the port).", minimum=1),
    S("auth_tokens", [], "list", "Bearer tokens the HTTP API accepts; none means no auth (loopback only).",
      flag="--auth-token", secret=True),
    S("insecure_no_auth", False, "bool", "Serve HTTP on a non-loopback address without auth tokens, or bind "
      "the broker (no authentication) to one."),
    S("enable_commands", False, "bool", "Allow shell command jobs (Cloud Foundry tasks)."),
    S("max_body_size", 16 * 1024 * 1024, "int", "Largest HTTP request body accepted, in bytes.", minimum=1),
    S("lease_seconds", 300, "int", "Default lease of an Accepted job handed out by want_job, in seconds.", minimum=1),
    S("worker_liveness_seconds", 5.0, "float", "Seconds of silence after which a worker is lost.", minimum=0.1),
    S("heartbeat_seconds", 1.0, "float", "Seconds between heartbeats of workers and broker.", minimum=0.01),
    S("worker_prefetch", 256, "int", "Most jobs a worker process holds ahead of running them (it asks for "
      "about 50 ms of work within this bound: deep for fast jobs, shallow for slow ones).", minimum=1,
      check=lambda value: None if value <= MAX_CREDIT else f"must be at most {MAX_CREDIT}"),
    S("worker_threads", 4, "int", "Jobs one worker process runs at once.", minimum=1),
    S("sqlite_synchronous", "FULL", "str", "SQLite synchronous mode: FULL (every acknowledgment survives power loss) or NORMAL.",
      choices=("FULL", "NORMAL")),
    S("ready_window", 10000, "int", "Ready jobs the broker keeps in memory per queue.", minimum=1),
    S("group_commit_max", 1024, "int", "Most messages the broker applies in one storage transaction.", minimum=1),
    S("request_timeout", 10.0, "float", "Seconds a front end waits for the broker to answer.", minimum=0.01),
    S("callback_attempts", 5, "int", "Attempts to deliver a job's callback.", minimum=1),
    S("plugins", None, "list", "Comma list of the plugins to load (default: all installed).", optional=True),
    S("queue_default_timeout", 30.0, "float", "Default timeout of a queue task's HTTP call, in seconds.",
      env_aliases=("QUEUE_DEFAULT_TIMEOUT",), minimum=0.001),
    S("queue_max_attempts", 1, "int", "Attempts of a queue task's HTTP call before it fails.", minimum=1),
    S("http_concurrency", 16, "int", "HTTP calls (`http` jobs) one worker process makes at once.", minimum=1),
    S("http_allowed_hosts", [], "list", "Hosts outgoing calls (`http` jobs, callbacks, each redirect) may "
      "reach: names, or `*.example.com` for its subdomains; none means any.", check=_check_allowed_hosts),
    S("schedule_keep_runs", 100, "int", "Ended runs each schedule keeps (older ones are deleted as new ones end).",
      minimum=1),
    S("push_concurrency", 16, "int", "`push` jobs one worker process sends to their queues' endpoints at once "
      "(each endpoint's own `concurrency` bounds its queue across every process).", minimum=1),
    S("fraction_fanout", 64, "int", "Most child jobs one step of a fraction creates.", minimum=2),
    S("js_time_limit", 30.0, "float", "Seconds one `javascript` run (and the promise jobs it leaves) may take "
      "before it is stopped.", minimum=0.001),
    S("js_memory_limit", 128 * 1024 * 1024, "int", "Bytes of V8 heap one `javascript` run may use before it is "
      "stopped.", minimum=16 * 1024 * 1024),
    S("js_concurrency", 2, "int", "`javascript` runs one worker process makes at once (each thread has a V8 "
      "isolate of its own).", minimum=1),
    S("command_time_limit", 3600.0, "float", "Seconds a `command` job's shell command may run before its process "
      "group is killed (the job's timeout stops it sooner).", minimum=0.001),
    S("command_kill_grace", 10.0, "float", "Seconds between SIGTERM and SIGKILL when a `command` job's process "
      "group is ended (the command exited, was cancelled or ran out of time).", minimum=0),
    S("command_log_max_bytes", 1024 * 1024, "int", "Bytes of a `command` job's output kept in its logs (the rest "
      "is dropped, with a line saying how much).", minimum=0),
    S("command_concurrency", 4, "int", "`command` jobs one worker process runs at once (on threads of the kind's "
      "own).", minimum=1),
    S("arangodb_databases", [], "list", "Databases the ArangoDB tasks API knows besides `_system` (each one a queue "
      "of the namespace `arangodb`)."),
    S("apps", {}, "table", "Cloud Foundry apps, a table per guid (`[apps.<guid>]`: `dir`, `env`, `memory_in_mb`, "
      "`disk_in_mb`, `log_rate_limit_in_bytes_per_second`, `space_guid`, `organization_guid`); an app not "
      "listed is made with the defaults by its first task.", check=_check_apps),
    S("public_url", None, "str", "Base URL links in API answers start with (default: the request's scheme and "
      "host).", optional=True),
    S("log_level", "INFO", "str", "Logging level.", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    S("config", None, "str", "TOML file of settings (keys are setting names).", optional=True),
)
del S
BY_NAME = {s.name: s for s in SETTINGS}
