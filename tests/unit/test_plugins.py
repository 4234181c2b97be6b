"""The plugin manager: loading, restriction, kind routing, isolation; the built-in plugins."""
import logging
import pathlib
import sys
from types import SimpleNamespace

import pytest

from tubeway import hookimpl
from tubeway.core.errors import ConfigError, UnknownKind, ValidationError
from tubeway.core.settings import load_settings
from tubeway.plugins.hookspecs import JobKind
from tubeway.plugins.manager import PluginManager

BUILTIN_KINDS = {"external", "noop", "echo", "sleep", "fail", "spawn", "callback"}
TESTING_KINDS = {"noop", "echo", "sleep", "fail", "spawn"}
TEAM_SRC = pathlib.Path(__file__).resolve().parents[2] / "examples" / "team_plugin" / "src"


def settings(plugins=None, **values):
    return SimpleNamespace(plugins=plugins, queue_default_timeout=30.0, **values)


def job(kind, payload=None, **fields):
    return {"id": "j1", "kind": kind, "payload": payload, "attempts": 1, "timeout": None, **fields}


class Owner:
    """A plugin declaring one kind, recording what it is called with."""

    def __init__(self, kind, calls=None):
        self.kind = kind
        self.calls = [] if calls is None else calls

    @hookimpl
    def tubeway_job_kinds(self):
        return [JobKind(self.kind)]

    @hookimpl
    def tubeway_validate_job(self, spec):
        self.calls.append(("validate", self.kind, spec["kind"]))
        if spec.get("payload") == "refuse":
            raise ValidationError("refused", "payload")

    @hookimpl
    def tubeway_run_job(self, job):
        self.calls.append(("run", self.kind, job["kind"]))
        return f"ran by {self.kind}"

    @hookimpl
    def tubeway_retry_decision(self, job):
        return job["payload"] != "final"


class Policy:
    """A plugin declaring no kinds: it sees every job."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def tubeway_validate_job(self, spec):
        self.seen.append(spec["kind"])
        if spec.get("payload") == "forbidden":
            raise ValidationError("forbidden by policy", "payload")

    @hookimpl(wrapper=True)
    def tubeway_wrap_job(self, job, context):
        self.seen.append(("before", job["kind"]))
        result = yield
        self.seen.append(("after", job["kind"]))
        return result


def load(*extra, plugins=("testing",)):
    return PluginManager.load(settings(list(plugins)), extra=list(extra))


# Loading.

def test_builtins_load_first_with_their_kinds():
    pm = PluginManager.load(settings())
    assert pm.names()[:3] == ["external", "testing", "callback"]
    assert BUILTIN_KINDS <= set(pm.kinds())
    assert pm.kinds()["external"].runs_on_workers is False
    assert "external" not in pm.worker_kinds()
    assert TESTING_KINDS | {"callback"} <= set(pm.worker_kinds())
    assert pm.owner("echo") == "testing" and pm.owner("callback") == "callback"


def test_tubeway_plugins_setting_restricts_what_loads():
    pm = PluginManager.load(load_settings(env={"TUBEWAY_PLUGINS": "testing,callback"}))
    assert pm.names() == ["testing", "callback"]
    assert TESTING_KINDS | {"callback"} <= set(pm.kinds()) and "external" not in pm.kinds()
    assert set(PluginManager.load(settings(["testing"])).kinds()) == TESTING_KINDS


def test_unknown_plugin_name_in_the_setting_is_an_error():
    with pytest.raises(ConfigError, match="'nosuch'"):
        PluginManager.load(settings(["testing", "nosuch"]))


def test_two_plugins_declaring_one_kind_is_an_error_naming_both():
    with pytest.raises(ConfigError) as caught:
        load(("alpha", Owner("dup")), ("beta", Owner("dup")))
    assert "'dup'" in str(caught.value) and "'alpha'" in str(caught.value) and "'beta'" in str(caught.value)


def test_a_kind_clashing_with_a_builtin_is_an_error():
    with pytest.raises(ConfigError, match="'testing' and 'mine'"):
        load(("mine", Owner("echo")))


def test_a_worker_kind_without_run_job_is_an_error():
    class KindOnly:
        @hookimpl
        def tubeway_job_kinds(self):
            return [JobKind("lazy")]

    with pytest.raises(ConfigError, match="'lazy'.*tubeway_run_job"):
        load(("lazy", KindOnly()))


def test_a_wrap_hook_that_is_not_a_wrapper_is_an_error():
    class Plain:
        @hookimpl
        def tubeway_wrap_job(self, job):
            return None

    with pytest.raises(ConfigError, match="wrapper=True"):
        load(("plain", Plain()))


def test_a_hook_taking_arguments_the_spec_lacks_is_an_error():
    class Wrong:
        @hookimpl
        def tubeway_run_job(self, job, contxt):
            return None

    with pytest.raises(ConfigError, match="plugin 'wrong' cannot be registered.*contxt"):
        load(("wrong", Wrong()))


def test_an_unknown_hook_is_an_error():
    class Typo:
        @hookimpl
        def tubeway_run_jobs(self, job):
            return None

    with pytest.raises(ConfigError, match="typo"):
        load(("typo", Typo()))


def test_job_kinds_get_the_settings_when_they_ask_for_them():
    seen = []

    class Configured:
        @hookimpl
        def tubeway_job_kinds(self, settings):
            seen.append(settings)
            return [JobKind("conf.fetch", description="Fetches.", concurrency=settings.fetch_threads)]

        @hookimpl
        def tubeway_run_job(self, job):
            return None

    loaded_with = settings(["testing"], fetch_threads=12)
    pm = PluginManager.load(loaded_with, extra=[("conf", Configured())])
    assert seen == [loaded_with]
    assert pm.kinds()["conf.fetch"] == JobKind("conf.fetch", True, "Fetches.", 12)
    assert pm.kind_concurrency() == {"conf.fetch": 12}
    assert "noop" in pm.kinds()  # implementations without the argument still work


def test_kind_concurrency_lists_worker_kinds_with_threads_of_their_own():
    class Kinds:
        @hookimpl
        def tubeway_job_kinds(self):
            return [JobKind("k.own", concurrency=4), ("k.tuple", True, "", 2), JobKind("k.shared"),
                    JobKind("k.outside", runs_on_workers=False, concurrency=8)]

        @hookimpl
        def tubeway_run_job(self, job):
            return None

    pm = load(("kinds", Kinds()))
    assert pm.kind_concurrency() == {"k.own": 4, "k.tuple": 2}
    assert JobKind("x").concurrency is None


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, "4", 10_000])
def test_a_bad_concurrency_is_an_error_naming_the_plugin_and_kind(concurrency):
    class Bad:
        @hookimpl
        def tubeway_job_kinds(self):
            return [JobKind("bad.kind", concurrency=concurrency)]

        @hookimpl
        def tubeway_run_job(self, job):
            return None

    with pytest.raises(ConfigError, match="plugin 'bad'.*'bad.kind': concurrency must be"):
        load(("bad", Bad()))


# Routing jobs to the plugin owning their kind.

def test_jobs_go_only_to_the_plugin_declaring_their_kind():
    calls = []
    pm = load(("a", Owner("kind.a", calls)), ("b", Owner("kind.b", calls)))
    assert pm.run_job(job("kind.a"), None) == "ran by kind.a"
    assert pm.run_job(job("kind.b"), None) == "ran by kind.b"
    assert calls == [("run", "kind.a", "kind.a"), ("run", "kind.b", "kind.b")]


def test_a_kind_returning_none_is_a_result():
    assert load().run_job(job("noop"), None) is None


def test_unknown_kinds_are_refused():
    pm = load()
    with pytest.raises(UnknownKind):
        pm.run_job(job("nope"), None)
    with pytest.raises(UnknownKind):
        pm.validate_job({"kind": "nope"}, settings())


def test_external_jobs_are_not_run_by_workers():
    pm = PluginManager.load(settings(["external"]))
    with pytest.raises(Exception, match="not run by worker processes"):
        pm.run_job(job("external"), None)


def test_validation_reaches_the_owner_and_kindless_plugins_only():
    calls, policy = [], Policy()
    pm = load(("a", Owner("kind.a", calls)), ("b", Owner("kind.b", calls)), ("policy", policy))
    pm.validate_job({"kind": "kind.b", "payload": 1}, settings())
    assert calls == [("validate", "kind.b", "kind.b")]
    assert policy.seen == ["kind.b"]
    with pytest.raises(ValidationError, match="refused"):
        pm.validate_job({"kind": "kind.a", "payload": "refuse"}, settings())
    with pytest.raises(ValidationError, match="policy"):
        pm.validate_job({"kind": "echo", "payload": "forbidden"}, settings())


def test_kindless_wrappers_wrap_every_job():
    policy = Policy()
    pm = load(("a", Owner("kind.a")), ("policy", policy))
    assert pm.run_job(job("kind.a"), None) == "ran by kind.a"
    assert pm.run_job(job("echo", "x"), None) == "x"
    assert policy.seen == [("before", "kind.a"), ("after", "kind.a"), ("before", "echo"), ("after", "echo")]


def test_a_wrapper_may_replace_the_result_and_sees_errors():
    class Wrapper:
        def __init__(self):
            self.errors = []

        @hookimpl(wrapper=True)
        def tubeway_wrap_job(self, job):
            try:
                result = yield
            except Exception as exc:
                self.errors.append(str(exc))
                raise
            return {"wrapped": result}

    wrapper = Wrapper()
    pm = load(("wrapper", wrapper))
    assert pm.run_job(job("echo", 5), None) == {"wrapped": 5}
    with pytest.raises(Exception, match="boom"):
        pm.run_job(job("fail", "boom"), None)
    assert wrapper.errors == ["boom"]


def test_a_failing_wrapper_is_logged_and_the_job_still_runs(caplog):
    class Broken:
        @hookimpl(wrapper=True)
        def tubeway_wrap_job(self, job):
            raise RuntimeError("wrapper broke")
            yield  # pragma: no cover

    class BrokenAfter:
        @hookimpl(wrapper=True)
        def tubeway_wrap_job(self, job):
            yield
            raise RuntimeError("teardown broke")

    pm = load(("broken", Broken()), ("after", BrokenAfter()))
    with caplog.at_level(logging.ERROR, logger="tubeway.plugins"):
        assert pm.run_job(job("echo", "still"), None) == "still"
    assert "plugin 'broken'" in caplog.text and "plugin 'after'" in caplog.text


def test_retry_decision_comes_from_the_owner():
    pm = load(("a", Owner("kind.a")))
    assert pm.retry_decision(job("kind.a", "again"), RuntimeError()) is True
    assert pm.retry_decision(job("kind.a", "final"), RuntimeError()) is False
    assert pm.retry_decision(job("echo"), RuntimeError()) is None
    assert pm.retry_decision(job("unknown"), RuntimeError()) is None


def test_a_failing_retry_hook_is_logged_as_no_opinion(caplog):
    class Broken:
        @hookimpl
        def tubeway_retry_decision(self, job):
            raise RuntimeError("no idea")

    pm = load(("broken", Broken()))
    assert pm.retry_decision(job("echo"), RuntimeError()) is None
    assert "plugin 'broken'" in caplog.text


# Process and HTTP hooks.

def test_a_failing_startup_hook_is_logged_not_fatal(caplog):
    order = []

    def lifecycle(name, fail=False):
        class Plugin:
            @hookimpl
            def tubeway_startup(self, role, settings):
                order.append(("start", name, role))
                if fail:
                    raise RuntimeError(f"{name} cannot start")

            @hookimpl
            def tubeway_shutdown(self, role):
                order.append(("stop", name, role))
        return Plugin()

    pm = load(("first", lifecycle("first")), ("broken", lifecycle("broken", fail=True)),
              ("last", lifecycle("last")))
    with caplog.at_level(logging.ERROR, logger="tubeway.plugins"):
        pm.startup("worker", settings())
    pm.shutdown("worker", settings())
    assert order == [("start", "first", "worker"), ("start", "broken", "worker"), ("start", "last", "worker"),
                     ("stop", "last", "worker"), ("stop", "broken", "worker"), ("stop", "first", "worker")]
    assert "plugin 'broken'" in caplog.text and "broken cannot start" in caplog.text


def test_http_routes_are_collected_in_registration_order_and_auth_takes_the_first_answer():
    def plugin(rules, decision):
        class Plugin:
            @hookimpl
            def tubeway_http_routes(self, settings):
                return rules

            @hookimpl
            def tubeway_authenticate(self, handler):
                return decision
        return Plugin()

    pm = load(("one", plugin([("/one", object)], None)), ("two", plugin([("/two", object)], False)))
    assert [rule[0] for rule in pm.http_routes(settings())] == ["/one", "/two"]
    assert pm.authenticate(object(), settings()) is False
    assert load().authenticate(object(), settings()) is None


# The example team plugin, found through an entry point.

@pytest.fixture
def team_plugin_installed(tmp_path, monkeypatch):
    """Make examples/team_plugin visible as if installed: its source plus a dist-info on sys.path."""
    dist_info = tmp_path / "tubeway_team_plugin-0.1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: tubeway-team-plugin\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text("[tubeway]\nteam = tubeway_team_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(TEAM_SRC))
    yield
    sys.modules.pop("tubeway_team_plugin", None)


def test_entry_point_plugins_load_after_builtins(team_plugin_installed):
    pm = PluginManager.load(settings())
    assert pm.names().index("team") > pm.names().index("callback")
    assert pm.owner("team.reverse") == "team"
    assert "team.reverse" in pm.worker_kinds()
    assert pm.run_job(job("team.reverse", "stressed"), SimpleNamespace(log=lambda line: None)) == "desserts"
    with pytest.raises(ValidationError, match="string"):
        pm.validate_job({"kind": "team.reverse", "payload": 3}, settings())


def test_entry_point_plugins_obey_the_restriction(team_plugin_installed):
    assert "team" not in PluginManager.load(settings(["testing"])).names()
    assert PluginManager.load(settings(["team"])).names() == ["team"]


def test_an_entry_point_that_fails_to_import_names_the_plugin(tmp_path, monkeypatch):
    dist_info = tmp_path / "broken_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[tubeway]\nbroken = no_such_module_for_tubeway\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="plugin 'broken' failed to load: ModuleNotFoundError"):
        PluginManager.load(settings())
