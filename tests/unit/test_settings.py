"""Settings: precedence, aliases, parsing and validation, round trips."""
import pickle
from pathlib import Path

import pytest

from tubeway.core.errors import ConfigError
from tubeway.core.settings import (
    README_BEGIN, README_END, SETTINGS, Settings, is_loopback, load_settings, settings_markdown, split_host_port,
)


def write_config(tmp_path, text):
    path = tmp_path / "tubeway.toml"
    path.write_text(text)
    return str(path)


def test_defaults():
    settings = load_settings({}, env={})
    assert settings.processes == 2
    assert settings.http == "127.0.0.1:8080"
    assert settings.broker == "tcp://127.0.0.1:5555"
    assert settings.max_body_size == 16 * 1024 * 1024
    assert settings.auth_tokens == []
    assert settings.plugins is None
    assert settings.db is None
    assert settings.queue_default_timeout == 30.0
    assert all(settings.source(s.name) == "default" for s in SETTINGS)


def test_registry_is_complete():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert all(s.help and s.type in {"str", "int", "float", "bool", "list", "table"} for s in SETTINGS)
    assert names[-1] == "config"


def test_apps_are_tables_in_the_config_file_or_json_elsewhere(tmp_path):
    path = write_config(tmp_path, '[apps.web]\ndir = "/srv/web"\nmemory_in_mb = 256\nenv = { A = "1" }\n')
    assert load_settings(env={"TUBEWAY_CONFIG": path}).apps == {"web": {"dir": "/srv/web", "memory_in_mb": 256,
                                                                        "env": {"A": "1"}}}
    assert load_settings(env={"TUBEWAY_APPS": '{"api": {"space_guid": "s1"}}'}).apps == {"api": {"space_guid": "s1"}}
    for bad in ('{"api": {"colour": "red"}}', '{"api": {"memory_in_mb": "big"}}', '[1]', "{nope"):
        with pytest.raises(ConfigError, match="apps"):
            load_settings(env={"TUBEWAY_APPS": bad})


def test_precedence_default_config_env_cli(tmp_path):
    path = write_config(tmp_path, "processes = 3\nworker_threads = 7\nlease_seconds = 10\nlog_level = 'debug'\n")
    env = {"TUBEWAY_CONFIG": path, "TUBEWAY_WORKER_THREADS": "8", "TUBEWAY_LEASE_SECONDS": "11"}
    settings = load_settings({"lease_seconds": "12"}, env=env)
    assert (settings.processes, settings.source("processes")) == (3, "config")
    assert (settings.worker_threads, settings.source("worker_threads")) == (8, "env")
    assert (settings.lease_seconds, settings.source("lease_seconds")) == (12, "cli")
    assert (settings.log_level, settings.source("log_level")) == ("DEBUG", "config")
    assert (settings.heartbeat_seconds, settings.source("heartbeat_seconds")) == (1.0, "default")
    assert settings.source("config") == "env"


def test_config_path_argument_and_dashed_keys(tmp_path):
    path = write_config(tmp_path, "worker-prefetch = 5\nauth_tokens = ['a', 'b']\nplugins = ['http']\n")
    settings = load_settings(env={}, config_path=path)
    assert settings.worker_prefetch == 5
    assert settings.auth_tokens == ["a", "b"]
    assert settings.plugins == ["http"]


def test_cli_none_means_not_given():
    settings = load_settings({"processes": None, "insecure_no_auth": None}, env={"TUBEWAY_PROCESSES": "6"})
    assert (settings.processes, settings.source("processes")) == (6, "env")
    assert settings.insecure_no_auth is False


def test_env_alias_and_main_name_wins():
    assert load_settings(env={"QUEUE_DEFAULT_TIMEOUT": "5"}).queue_default_timeout == 5.0
    both = {"QUEUE_DEFAULT_TIMEOUT": "5", "TUBEWAY_QUEUE_DEFAULT_TIMEOUT": "7"}
    settings = load_settings(env=both)
    assert settings.queue_default_timeout == 7.0
    assert settings.source("queue_default_timeout") == "env"


def test_lists_from_env_and_cli():
    settings = load_settings({"plugins": "http, fraction"}, env={"TUBEWAY_AUTH_TOKENS": "s1, s2,,"})
    assert settings.auth_tokens == ["s1", "s2"]
    assert settings.plugins == ["http", "fraction"]
    assert load_settings({"auth_tokens": ["x", "y"]}, env={}).auth_tokens == ["x", "y"]
    assert load_settings(env={"TUBEWAY_PLUGINS": ""}).plugins is None


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True), ("off", False),
])
def test_bools_from_strings(raw, expected):
    assert load_settings(env={"TUBEWAY_ENABLE_COMMANDS": raw}).enable_commands is expected


def test_bool_from_cli_flag():
    assert load_settings({"insecure_no_auth": True}, env={}).insecure_no_auth is True


@pytest.mark.parametrize("name, value", [
    ("processes", "two"),
    ("processes", "-1"),
    ("http_processes", "0"),
    ("heartbeat_seconds", "fast"),
    ("enable_commands", "maybe"),
    ("sqlite_synchronous", "OFF"),
    ("log_level", "LOUD"),
    ("http", "8080"),
    ("http", "localhost:99999"),
    ("broker", "127.0.0.1:5555"),
    ("db", "mysql://root@localhost/db"),
])
def test_invalid_values_name_the_setting(name, value):
    with pytest.raises(ConfigError) as info:
        load_settings(env={"TUBEWAY_" + name.upper(): value})
    assert f"'{name}'" in info.value.message
    assert f"TUBEWAY_{name.upper()}" in info.value.message
    assert info.value.details["setting"] == name


def test_invalid_config_values(tmp_path):
    with pytest.raises(ConfigError, match="'processes'"):
        load_settings(env={}, config_path=write_config(tmp_path, "processes = '3'\n"))
    with pytest.raises(ConfigError, match="'processes'"):
        load_settings(env={}, config_path=write_config(tmp_path, "processes = true\n"))
    with pytest.raises(ConfigError, match="'auth_tokens'"):
        load_settings(env={}, config_path=write_config(tmp_path, "auth_tokens = [1]\n"))
    with pytest.raises(ConfigError, match="'no_such_thing'"):
        load_settings(env={}, config_path=write_config(tmp_path, "no_such_thing = 1\n"))
    with pytest.raises(ConfigError, match="'config'"):
        load_settings(env={}, config_path=write_config(tmp_path, "processes = \n"))
    with pytest.raises(ConfigError, match="'config'"):
        load_settings(env={}, config_path=str(tmp_path / "missing.toml"))


def test_unknown_cli_setting():
    with pytest.raises(ConfigError, match="'bogus'"):
        load_settings({"bogus": 1}, env={})


def test_choices_are_normalized():
    settings = load_settings({"sqlite_synchronous": "normal", "log_level": "warning"}, env={})
    assert (settings.sqlite_synchronous, settings.log_level) == ("NORMAL", "WARNING")


def test_float_accepts_integers(tmp_path):
    settings = load_settings(env={}, config_path=write_config(tmp_path, "request_timeout = 3\n"))
    assert settings.request_timeout == 3.0 and isinstance(settings.request_timeout, float)


def test_as_dict_round_trip():
    settings = load_settings({"processes": "5", "auth_tokens": ["t"]}, env={"TUBEWAY_DB": "sqlite:////tmp/x.db"})
    data = pickle.loads(pickle.dumps(settings.as_dict()))
    rebuilt = Settings.from_dict(data, settings.sources())
    assert rebuilt.as_dict() == settings.as_dict()
    assert rebuilt.source("processes") == "cli" and rebuilt.source("db") == "env"
    assert Settings.from_dict(data).source("processes") == "default"
    assert pickle.loads(pickle.dumps(settings)).as_dict() == settings.as_dict()


def test_as_dict_is_a_copy():
    settings = load_settings(env={})
    settings.as_dict()["auth_tokens"].append("x")
    assert settings.auth_tokens == []
    assert load_settings(env={}).auth_tokens == []


def test_from_dict_validates():
    with pytest.raises(ConfigError, match="'processes'"):
        Settings.from_dict({"processes": "many"})
    with pytest.raises(ConfigError, match="'nope'"):
        Settings.from_dict({"nope": 1})


def test_replace():
    settings = load_settings(env={}).replace(lease_seconds=2)
    assert settings.lease_seconds == 2 and settings.source("lease_seconds") == "cli"


def test_database_url():
    assert load_settings(env={}).database_url == "sqlite:///.tubeway/tubeway.db"
    assert load_settings({"data_dir": "/var/lib/tw"}, env={}).database_url == "sqlite:////var/lib/tw/tubeway.db"
    url = "postgresql://tw@127.0.0.1:5432/tw"
    assert load_settings(env={"TUBEWAY_DB": url}).database_url == url


def test_host_port_helpers():
    assert split_host_port("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_host_port("[::1]:80") == ("::1", 80)
    assert load_settings({"http": "localhost:9000"}, env={}).http_address == ("localhost", 9000)
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost", "LOCALHOST"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.com"))


def test_settings_markdown_lists_every_setting():
    table = settings_markdown()
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in table
    assert "`QUEUE_DEFAULT_TIMEOUT`" in table
    assert "`--auth-token`" in table


def test_readme_settings_table_is_current():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert README_BEGIN in readme and README_END in readme
    table = readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0]
    assert table == settings_markdown(), "regenerate with: python -m tubeway.core.settings README.md"
