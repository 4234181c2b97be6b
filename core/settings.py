"""Tubeway's settings: one registry, four layers.

Every setting is a :class:`Setting` in :data:`SETTINGS`. :func:`load_settings` builds
a :class:`Settings` from defaults < TOML config file < environment (``TUBEWAY_<NAME>``
and any aliases) < command line, and raises :class:`~tubeway.core.errors.ConfigError`
naming the setting when a value is invalid. Values from the environment and the
command line are strings: lists are comma-separated, booleans are true/false/1/0
(also yes/no, on/off), and an empty string sets an optional setting to None.
"""
import json
import os
import sys

from tubeway.core.errors import ConfigError
from tubeway.core.setting_defs import (  # noqa: F401 - the registry is part of this API
    BY_NAME, ENV_PREFIX, SETTINGS, SOURCES, Setting, is_local_endpoint, is_loopback, mask_url, split_host_port,
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _invalid(setting, origin, problem):
    return ConfigError(f"invalid setting '{setting.name}' (from {origin}): {problem}", setting=setting.name)


_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "a boolean", "list": "an array of strings",
               "table": "a table"}


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
        elif kind == "table":
            value = _to_table(value)
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


def _to_table(value):
    """A TOML table (a dict), or its JSON text (from the environment or the command line)."""
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError as exc:
            raise ValueError(f"expected a JSON object, got {value!r} ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {value!r}")
    return value


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
    if isinstance(value, dict):
        return dict(value)
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
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if setting.name == "db":
        return mask_url(value)
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
