"""Schedule specs and the policies deciding when each run is due, on explicit (injected) times."""
import pytest

from tubeway.core.errors import UnknownKind, ValidationError
from tubeway.core.job import normalize_spec
from tubeway.core.schedule import (
    RUN_LABEL, due_after_end, due_after_fire, first_due, normalize_schedule,
)


def schedule(policy="every", period=10.0, first_run_at=1000.0, next_run_at=None):
    return {"policy": policy, "period": period, "first_run_at": first_run_at, "next_run_at": next_run_at}


# -- policies -------------------------------------------------------------------------------
def test_the_first_run_is_due_offset_seconds_after_creation():
    assert first_due(1000.0, 0.0) == 1000.0
    assert first_due(1000.0, 2.5) == 1002.5


def test_every_fires_on_the_grid_of_periods_from_the_first_due_time():
    every = schedule()
    assert due_after_fire(every, 1000.0) == 1010.0
    assert due_after_fire(every, 1000.3) == 1010.0  # a late fire does not shift the grid
    assert due_after_fire(every, 1010.0) == 1020.0


def test_every_missed_slots_make_one_run_then_the_next_slot_after_now():
    every = schedule()
    assert due_after_fire(every, 1095.0) == 1100.0  # nine slots missed: one run now, the next on the grid
    assert due_after_fire(every, 1100.0) == 1110.0


def test_every_keeps_the_slot_set_at_fire_time_when_the_run_ends():
    assert due_after_end(schedule(next_run_at=1010.0), 1003.0) == 1010.0
    # the run overran its slot: the next fires at once (the slot is past), once
    assert due_after_end(schedule(next_run_at=1010.0), 1047.0) == 1010.0


def test_after_end_is_due_period_seconds_after_the_previous_run_ended():
    after_end = schedule(policy="after_end")
    assert due_after_fire(after_end, 1000.0) is None  # decided when the run ends
    assert due_after_end(after_end, 1003.5) == 1013.5
    assert due_after_end(after_end, 1200.0) == 1210.0


def test_a_run_once_schedule_has_no_next_run():
    for policy in ("every", "after_end"):
        once = schedule(policy=policy, period=None)
        assert due_after_fire(once, 1000.0) is None and due_after_end(once, 1001.0) is None


def test_tiny_periods_never_give_a_due_time_at_or_before_the_fire():
    every = schedule(period=0.1, first_run_at=0.3)
    for fired_at in (0.3, 0.4, 0.7, 1e9 + 0.1):
        assert due_after_fire(every, fired_at) > fired_at


# -- specs ----------------------------------------------------------------------------------
def test_defaults_and_normalized_template():
    spec = normalize_schedule({"job": {"kind": "echo", "queue": "q", "payload": {"a": 1}}, "period": 5})
    assert spec["id"] is None and spec["offset"] == 0.0 and spec["policy"] == "every" and spec["period"] == 5.0
    assert spec["job"] == normalize_spec({"kind": "echo", "queue": "q", "payload": {"a": 1}})


def test_id_label_names_an_extra_run_label():
    assert normalize_schedule({"job": {"kind": "echo"}})["id_label"] is None
    assert normalize_schedule({"job": {"kind": "echo"}, "id_label": "task_id"})["id_label"] == "task_id"


def test_period_null_means_run_once():
    assert normalize_schedule({"job": {"kind": "echo"}, "period": None, "offset": 3})["period"] is None


@pytest.mark.parametrize("body, field", [
    ({"job": {"kind": "echo"}, "period": 0}, "period"),
    ({"job": {"kind": "echo"}, "period": -1}, "period"),
    ({"job": {"kind": "echo"}, "period": "5"}, "period"),
    ({"job": {"kind": "echo"}, "period": float("inf")}, "period"),
    ({"job": {"kind": "echo"}, "period": True}, "period"),
    ({"job": {"kind": "echo"}, "offset": -1}, "offset"),
    ({"job": {"kind": "echo"}, "offset": 2e9}, "offset"),
    ({"job": {"kind": "echo"}, "policy": "sometimes"}, "policy"),
    ({"job": {"kind": "echo"}, "id": ""}, "id"),
    ({"job": {"kind": "echo"}, "id": 5}, "id"),
    ({"job": {"kind": "echo"}, "id": "x" * 201}, "id"),
    ({"job": {"kind": "echo"}, "every": 5}, "every"),
    ({"job": "echo"}, "job"),
    ({}, "job"),
    ({"job": {"kind": "echo", "delay": 5}}, "job.delay"),
    ({"job": {"kind": "echo", "run_at": 5}}, "job.run_at"),
    ({"job": {"kind": "echo", "unique_key": "k"}}, "job.unique_key"),
    ({"job": {"kind": "echo", "parent": "p"}}, "job.parent"),
    ({"job": {"kind": "echo", "priority": "high"}}, "job.priority"),
    ({"job": {"kind": "echo", "labels": {RUN_LABEL: "mine"}}}, "job.labels"),
    ({"job": {"kind": "echo"}, "id": "a\x00b"}, "id"),
    ({"job": {"kind": "echo", "queue": "a\x00"}}, "job.queue"),
    ({"job": {"kind": "echo", 1: 2}}, "job"),
    ({"job": {"kind": "echo"}, "id_label": ""}, "id_label"),
    ({"job": {"kind": "echo"}, "id_label": 5}, "id_label"),
    ({"job": {"kind": "echo"}, "id_label": RUN_LABEL}, "id_label"),
    ({"job": {"kind": "echo", "labels": {"mine": "x"}}, "id_label": "mine"}, "id_label"),
])
def test_invalid_specs_name_the_field(body, field):
    with pytest.raises(ValidationError) as error:
        normalize_schedule(body)
    assert error.value.field == field


def test_a_non_object_is_refused():
    with pytest.raises(ValidationError):
        normalize_schedule(["job"])


def test_the_template_checker_is_injected_and_its_error_class_kept():
    def known_kinds_only(job):
        return normalize_spec(job, known_kinds={"echo"})
    with pytest.raises(UnknownKind) as error:
        normalize_schedule({"job": {"kind": "nope"}}, normalize_job=known_kinds_only)
    assert error.value.field == "job.kind"
