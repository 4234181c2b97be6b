"""The front end's dialect modules: every listed one ships and serves; one that fails to import stops the start."""
import logging
import re
from types import SimpleNamespace

import pytest

from tubeway.broker.http import app
from tubeway.core import cli, logs
from tubeway.core.errors import ConfigError


@pytest.fixture
def no_serving(monkeypatch):
    """``serve`` goes no further than its start checks: what it would have served is recorded, not run."""
    served = []

    async def record(*args):
        served.append(args)

    monkeypatch.setattr(app, "_serve", record)
    monkeypatch.setattr(logs, "setup_logging", lambda role, level="INFO", stream=None: logging.getLogger("t"))
    return served


@pytest.fixture
def broken_dialect(monkeypatch, tmp_path):
    """A dialect module in this package that raises ImportError when imported."""
    (tmp_path / "broken_dialect.py").write_text("raise ImportError('cannot import name routes from nowhere')\n")
    package = __import__("tubeway.broker.http", fromlist=["_"])
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    return "broken_dialect"


def test_every_listed_dialect_ships_and_gives_routes():
    modules = app.dialect_modules()
    assert [m.__name__.rsplit(".", 1)[1] for m in modules] == list(app.DIALECTS)
    patterns = [rule[0] for rule in app.collect_routes(SimpleNamespace(), None)]
    for path in ("/api/v1/jobs", "/jobs", "/want_job", "/task", "/fraction", "/metrics", "/_api/tasks",
                 "/_db/_system/_api/tasks/7/"):
        assert any(re.fullmatch(pattern, path) for pattern in patterns), path


@pytest.mark.parametrize("missing", ["no_such_dialect", "broken"])
def test_a_listed_dialect_that_does_not_import_is_an_error(monkeypatch, broken_dialect, missing):
    name = broken_dialect if missing == "broken" else missing
    monkeypatch.setattr(app, "DIALECTS", ("native", name, "queue_task"))
    with pytest.raises(ConfigError) as caught:
        app.collect_routes(SimpleNamespace(), None)
    assert f"tubeway.broker.http.{name} failed to import" in caught.value.message


def test_the_front_end_refuses_to_start_without_a_listed_dialect(monkeypatch, no_serving, capsys):
    monkeypatch.setattr(app, "DIALECTS", ("native", "no_such_dialect"))
    code = cli.main(["http", "--http", "127.0.0.1:1", "--http-processes", "1"])
    assert (code, no_serving) == (2, [])
    assert "tubeway.broker.http.no_such_dialect failed to import" in capsys.readouterr().err


def test_the_front_end_starts_with_the_real_list(no_serving):
    assert cli.main(["http", "--http", "127.0.0.1:1", "--http-processes", "1"]) == 0
    assert len(no_serving) == 1
