"""Tubeway's settings: one registry, four layers.

Every setting is a :class:`Setting` in :data:`SETTINGS`. :func:`load_settings` builds
a :class:`Settings` from defaults < TOML config file < environment (``TUBEWAY_<NAME>``
and any aliases) < command line, and raises :class:`~tubeway.core.errors.ConfigError`
naming the setting when a value is invalid. Values from the environment and the
command line are strings: lists are comma-separated, booleans are true/false/1/0
(also yes/no, on/off), and an empty string sets an optional setting to None.
"""
import dataclasses
import ipaddress
import os
import sys
from typing import Any, Callable, Optional

from tubeway.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_PREFIX = "TUBEWAY_"
SOURCES = ("default", "config", "env", "cli")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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
        return f"expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB, got {_mask_url(value)!r}"


def _mask_url(value):
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
    S("insecure_no_auth", False, "bool", "Serve a non-loopback address without auth tokens."),
    S("enable_commands", False, "bool", "Allow shell command jobs (Cloud Foundry tasks)."),
    S("max_body_size", 16 * 1024 * 1024, "int", "Largest HTTP request body accepted, in bytes.", minimum=1),
    S("lease_seconds", 300, "int", "Default lease of an Accepted job handed out by want_job, in seconds.", minimum=1),
    S("worker_liveness_seconds", 5.0, "float", "Seconds of silence after which a worker is lost.", minimum=0.1),
    S("heartbeat_seconds", 1.0, "float", "Seconds between heartbeats of workers and broker.", minimum=0.01),
    S("worker_prefetch", 256, "int", "Most jobs a worker process holds ahead of running them (it asks for "
      "about 50 ms of work within this bound: deep for fast jobs, shallow for slow ones).", minimum=1),
    S("worker_threads", 4, "int", "Jobs one worker process runs at once.", minimum=1),
    S("sqlite_synchronous", "FULL", "str", "SQLite synchronous mode: FULL (survives power loss) or NORMAL.",
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
    S("http_allowed_hosts", [], "list", "Hosts `http` jobs may call: names, or `*.example.com` for its "
      "subdomains; none means any.", check=_check_allowed_hosts),
    S("fraction_fanout", 64, "int", "Most child jobs one step of a fraction creates.", minimum=2),
    S("log_level", "INFO", "str", "Logging level.", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    S("config", None, "str", "TOML file of settings (keys are setting names).", optional=True),
)
del S
BY_NAME = {s.name: s for s in SETTINGS}


def _invalid(setting, origin, problem):
    return ConfigError(f"invalid setting '{setting.name}' (from {origin}): {problem}", setting=setting.name)


_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "a boolean", "list": "an array of strings"}


def _convert(setting, value, origin, typed=False):
    """Check ``value`` and return it typed; strings are parsed unless ``typed`` (TOML values)."""
    if typed and isinstance(value, str) and setting.type != "str":
        raise _invalid(setting, origin, f"expected {_TYPE_NAMES[setting.type]}, got {value!r}")
    if isinstance(value, str) and setting.type != "str":
        value = value.strip()
    if setting.optional and (value is None or value == ""):
        return None
    kind = setting.type
    try:
        if kind == "bool":
            value = _to_bool(value)
        elif kind == "int":
            value = _to_number(value, int)
        elif kind == "float":
            value = float(_to_number(value, float))
        elif kind == "list":
            value = _to_list(value)
        elif not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
    except ValueError as exc:
        raise _invalid(setting, origin, str(exc)) from None
    return _bounded(setting, value, origin)


def _bounded(setting, value, origin):
    if setting.choices:
        upper = value.upper()
        if upper not in setting.choices:
            raise _invalid(setting, origin, f"expected one of {', '.join(setting.choices)}, got {value!r}")
        value = upper
    if setting.minimum is not None and value < setting.minimum:
        raise _invalid(setting, origin, f"must be >= {setting.minimum}, got {value!r}")
    problem = setting.check(value) if setting.check else None
    if problem:
        raise _invalid(setting, origin, problem)
    return value


def _to_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError(f"expected true/false/1/0, got {value!r}")


def _to_number(value, kind):
    name = "an integer" if kind is int else "a number"
    if isinstance(value, bool):
        raise ValueError(f"expected {name}, got {value!r}")
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"expected {name}, got {value!r}") from None
    if isinstance(value, int) or (kind is float and isinstance(value, float)):
        return value
    raise ValueError(f"expected {name}, got {value!r}")


def _to_list(value):
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    raise ValueError(f"expected a list of strings, got {value!r}")


class Settings:
    """Every setting's value as an attribute, and where it came from (:meth:`source`)."""

    def __init__(self, values, sources=None):
        sources = sources or {}
        self._sources = {name: sources.get(name, "default") for name in BY_NAME}
        for setting in SETTINGS:
            setattr(self, setting.name, values.get(setting.name, _default(setting)))

    @property
    def database_url(self):
        """The ``db`` setting, or SQLite in ``data_dir``: ``sqlite:///<data_dir>/tubeway.db``."""
        return self.db or f"sqlite:///{os.path.join(self.data_dir, 'tubeway.db')}"

    @property
    def http_address(self):
        """The ``http`` setting as ``(host, port)``."""
        return split_host_port(self.http)

    def source(self, name):
        """Where ``name``'s value came from: default, config, env or cli."""
        return self._sources[name]

    def sources(self):
        """Every setting's source, by name."""
        return dict(self._sources)

    def as_dict(self):
        """Every setting's value, by name (plain, picklable, JSON-serializable)."""
        return {s.name: _copy(getattr(self, s.name)) for s in SETTINGS}

    @classmethod
    def from_dict(cls, values, sources=None):
        """Rebuild settings from :meth:`as_dict` output (validated; unknown names are refused)."""
        unknown = sorted(set(values) - set(BY_NAME))
        if unknown:
            raise ConfigError(f"unknown setting '{unknown[0]}'", setting=unknown[0])
        typed = {name: _convert(BY_NAME[name], value, "dict") for name, value in values.items()}
        return cls(typed, sources)

    def replace(self, **changes):
        """A copy with some values changed (validated; their source becomes ``cli``)."""
        rebuilt = Settings.from_dict({**self.as_dict(), **changes}, self._sources)
        rebuilt._sources.update({name: "cli" for name in changes})
        return rebuilt

    def __repr__(self):
        return f"Settings({self.as_dict()!r})"


def _copy(value):
    return list(value) if isinstance(value, list) else value


def _default(setting):
    return _copy(setting.default)


def read_config(path):
    """The settings a TOML file sets, by name (dashes in keys are read as underscores)."""
    config = BY_NAME["config"]
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise _invalid(config, "config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(config, "config", f"{path} is not valid TOML: {exc}") from None
    values = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in BY_NAME or name == "config":
            raise ConfigError(f"unknown setting '{key}' in config file {path}", setting=key)
        values[name] = value
    return values


def _from_env(setting, env):
    for env_name in setting.env_names:
        if env_name in env:
            return env_name, env[env_name]
    return None, None


def load_settings(cli_values=None, env=None, config_path=None):
    """Build :class:`Settings` from defaults < config file < environment < ``cli_values``.

    ``env`` defaults to ``os.environ``; ``cli_values`` maps setting names to values
    (None means not given). The config file is ``config_path``, else the ``config``
    setting from the command line or ``TUBEWAY_CONFIG``.
    """
    env = os.environ if env is None else env
    cli_values = {k: v for k, v in (cli_values or {}).items() if v is not None}
    unknown = sorted(set(cli_values) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"unknown setting '{unknown[0]}'", setting=unknown[0])
    values = {s.name: _default(s) for s in SETTINGS}
    sources = dict.fromkeys(values, "default")
    layers = []
    for setting in SETTINGS:
        env_name, raw = _from_env(setting, env)
        if env_name:
            layers.append((setting, raw, "env", f"environment {env_name}"))
    for name, raw in cli_values.items():
        layers.append((BY_NAME[name], raw, "cli", f"command line {BY_NAME[name].cli_flag}"))
    if config_path is not None:
        layers.append((BY_NAME["config"], str(config_path), "cli", "load_settings(config_path)"))
    for setting, raw, source, origin in layers:
        values[setting.name] = _convert(setting, raw, origin)
        sources[setting.name] = source
    if values["config"]:
        for name, raw in read_config(values["config"]).items():
            if sources[name] == "default":
                values[name] = _convert(BY_NAME[name], raw, f"config file {values['config']}", typed=True)
                sources[name] = "config"
    return Settings(values, sources)


def display(setting, value):
    """A value as ``tubeway settings`` prints it (secrets hidden)."""
    if value is None:
        return "none"
    if setting.secret and value:
        return ",".join("***" for _ in value)
    if isinstance(value, list):
        return ",".join(value) if value else "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if setting.name == "db":
        return _mask_url(value)
    return str(value)


def settings_markdown():
    """The README's table of settings, rendered from :data:`SETTINGS`."""
    rows = ["| Setting | Flag | Environment | Default | Description |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = "none" if s.default is None else display(s, s.default)
        env = ", ".join(f"`{name}`" for name in s.env_names)
        rows.append(f"| `{s.name}` | `{s.cli_flag}` | {env} | `{default}` | {s.help} |")
    return "\n".join(rows) + "\n"


README_BEGIN = ("<!-- settings table: generated by `python -m tubeway.core.settings README.md`; "
                "do not edit by hand -->\n")
README_END = "<!-- end of settings table -->\n"


def update_readme(path):
    """Rewrite the settings table between the README's markers; True when it changed."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    head, _, rest = text.partition(README_BEGIN)
    _, _, tail = rest.partition(README_END)
    updated = head + README_BEGIN + settings_markdown() + README_END + tail
    if updated != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(updated)
    return updated != text


if __name__ == "__main__":
    if len(sys.argv) > 1:
        update_readme(sys.argv[1])
    else:
        print(settings_markdown(), end="")
