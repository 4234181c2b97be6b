"""ArangoDB tasks translated to schedules and back (broker/http/arangodb_shape.py), without processes."""
import orjson
import pytest

from tubeway.broker.http import arangodb_shape as shape
from tubeway.broker.http.arangodb import known_databases
from tubeway.broker.http.base import ApiError
from tubeway.core.schedule import normalize_schedule


def bad(call, *args):
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status_code == 400 and caught.value.extra == {"errorNum": 10}
    return caught.value.message


def test_a_body_becomes_an_after_end_schedule_of_a_javascript_job():
    body = {"name": "n", "command": "return params.a", "params": {"a": 1}, "period": 2, "offset": 3, "id": "x"}
    spec = normalize_schedule(shape.schedule_spec(body, "db1", "x", body["command"]))
    assert spec["id"] == "x" and spec["period"] == 2.0 and spec["offset"] == 3.0 and spec["policy"] == "after_end"
    job = spec["job"]
    assert (job["namespace"], job["queue"], job["kind"]) == ("arangodb", "db1", "javascript")
    assert job["payload"] == {"command": "return params.a", "params": {"a": 1}}
    assert job["labels"] == {"task_name": "n"} and spec["id_label"] == "task_id"


def test_defaults_timed_and_no_params():
    spec = shape.schedule_spec({"command": "x"}, "_system", None, "x")
    assert spec["period"] is None and spec["offset"] == 0.0 and spec["id"] is None
    assert spec["job"]["payload"] == {"command": "x"}
    assert spec["job"]["labels"] == {"task_name": "user-defined task"}
    assert shape.name_of({"name": 5}) == "user-defined task"


def test_a_record_becomes_a_task_in_arangodbs_order():
    record = {"id": "7", "queue": "_system", "created_at": 1700000000, "period": 2.0, "offset": 0.0,
              "job": {"payload": {"command": "return 1"}, "labels": {"task_name": "n"}}}
    task = shape.task_object(record)
    assert list(task) == ["id", "name", "created", "type", "period", "offset", "command", "database"]
    assert task["type"] == "periodic" and task["command"] == "(function (params) { return 1 } )(params);"
    assert b'"created":1700000000.0' in orjson.dumps(task)
    timed = shape.task_object(dict(record, period=None))
    assert timed["type"] == "timed" and "period" not in timed


def test_a_record_not_made_here_still_renders():
    task = shape.task_object({"id": "s", "queue": "q", "created_at": 1.5, "period": None, "offset": 0,
                              "job": {"payload": "not an object", "labels": {}}})
    assert task["name"] == "user-defined task" and task["command"] == "(function (params) {  } )(params);"


@pytest.mark.parametrize("period", [0, -1, "2", True, [], 1e12])
def test_a_bad_period_is_400_10(period):
    assert bad(shape.period_of, {"period": period}) == "task period must be specified and positive"


def test_null_period_is_timed_and_a_negative_offset_is_at_once():
    assert shape.period_of({"period": None}) is None
    assert shape.offset_of({"offset": -5}) == 0.0 and shape.offset_of({}) == 0.0
    bad(shape.offset_of, {"offset": "soon"})


@pytest.mark.parametrize("command", [None, "", "   ", 5, {"code": "x"}])
def test_a_missing_command_is_400_10(command):
    assert bad(shape.command_of, {"command": command}) == "command must be specified"


def test_task_ids():
    assert shape.task_id_of(None) is None and shape.task_id_of("") is None and shape.task_id_of("a b") == "a b"
    bad(shape.task_id_of, "x" * 201)
    bad(shape.task_id_of, "a\x00b")
    bad(shape.name_of, {"name": "n" * 1001})


def test_known_databases():
    class Settings:
        arangodb_databases = ["one", " two ", ""]

    assert known_databases(Settings()) == {"_system", "one", "two"}
    assert known_databases(object()) == {"_system"}
