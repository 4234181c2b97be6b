"""Schedules: a job template run every ``period`` seconds (or once), and when each run is due.

A *schedule spec* is what a client sends; :func:`normalize_schedule` checks it:

* ``id``: optional, a name of at most 200 characters, unique in the job's namespace;
  without one the broker generates a numeric string from a counter it keeps.
* ``job``: the template of every run, a job spec (see :func:`~tubeway.core.job.normalize_spec`)
  without ``delay``, ``run_at``, ``unique_key`` or ``parent`` (the schedule decides when,
  and every run is a new job). Its ``namespace`` and ``queue`` are the schedule's.
* ``period``: seconds between runs, a number > 0; None means run once, after which the
  schedule is removed (its run stays, an ordinary job).
* ``offset``: seconds from creation to the first run (default 0).
* ``id_label``: optional, the name of a label each run also carries holding the schedule's
  id (the ArangoDB tasks' ``task_id``), besides ``schedule``.
* ``policy``: when the next run is due. ``every``: at the first due time plus a whole
  number of periods, the first such time after the run fired (slots missed, while the
  broker was down or a run overran, make one run, not one each). ``after_end``:
  ``period`` seconds after the previous run ended (ArangoDB's tasks).

Whatever the policy, a run never starts while the previous run of the same schedule
has not ended: a run due meanwhile fires once that one ends. Each run carries the
label ``schedule`` (:data:`RUN_LABEL`) holding its schedule's id.
"""
import math

from tubeway.core.errors import ValidationError
from tubeway.core.job import MAX_NAME, normalize_spec, storable

POLICIES = ("every", "after_end")
DEFAULT_POLICY = "every"
SCHEDULE_FIELDS = ("id", "job", "period", "offset", "policy", "id_label")
#: The label every run carries, holding its schedule's id.
RUN_LABEL = "schedule"
#: Largest period and offset, in seconds (about 31 years).
MAX_SECONDS = 1e9
#: Job fields a schedule's template may not set.
TEMPLATE_REFUSED = ("delay", "run_at", "unique_key", "parent")


def _seconds(spec, field, default):
    value = spec.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_SECONDS:
        raise ValidationError(f"'{field}' must be a number of seconds from 0 to {MAX_SECONDS:.0e}", field)
    return float(value)


def check_schedule_id(value, field="id"):
    """A schedule id (or namespace, queue): a non-empty string of at most ``MAX_NAME`` characters, no NUL.

    Raises ValidationError naming ``field``.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not storable(value):
        raise ValidationError(f"'{field}' must be a non-empty string of at most {MAX_NAME} characters (no NUL)",
                              field)
    return value


def normalize_schedule(spec, normalize_job=normalize_spec):
    """Check a schedule spec and return it normalized; raises :class:`ValidationError` naming the field.

    ``normalize_job`` checks the template (``normalize_spec`` by default; front ends
    pass one that also asks the plugins); its errors name ``job.<field>``.
    """
    if not isinstance(spec, dict):
        raise ValidationError("a schedule must be a JSON object", None)
    unknown = sorted(set(spec) - set(SCHEDULE_FIELDS), key=str)
    if unknown:
        raise ValidationError(f"unknown field '{unknown[0]}'", str(unknown[0]))
    schedule_id = spec.get("id")
    if schedule_id is not None:
        check_schedule_id(schedule_id)
    period = _seconds(spec, "period", None)
    if period is not None and period <= 0:
        raise ValidationError("'period' must be a number > 0, or null to run once", "period")
    offset = _seconds(spec, "offset", 0.0)
    policy = spec.get("policy")
    if policy is None:
        policy = DEFAULT_POLICY
    if policy not in POLICIES:
        raise ValidationError(f"'policy' must be one of {', '.join(POLICIES)}", "policy")
    template = _template(spec.get("job"), normalize_job)
    return {"id": schedule_id, "job": template, "period": period,
            "offset": 0.0 if offset is None else offset, "policy": policy,
            "id_label": _id_label(spec.get("id_label"), template)}


def _id_label(value, template):
    """The ``id_label`` of a spec: None, or a label name neither the broker's nor the template's."""
    if value is None:
        return None
    check_schedule_id(value, "id_label")
    if value == RUN_LABEL or value in template["labels"]:
        raise ValidationError(f"'id_label' must name a label neither '{RUN_LABEL}' nor one of the job's", "id_label")
    return value


def _template(job, normalize_job):
    if not isinstance(job, dict) or not all(isinstance(key, str) for key in job):
        raise ValidationError("'job' must be a job object", "job")
    for field in TEMPLATE_REFUSED:
        if job.get(field) is not None:
            raise ValidationError(f"'job.{field}' cannot be set on a schedule's job", f"job.{field}")
    try:
        template = normalize_job(job)
    except ValidationError as error:
        field = f"job.{error.field}" if error.field else "job"
        raise type(error)(error.message, field) from None
    if RUN_LABEL in template["labels"]:
        raise ValidationError(f"the label '{RUN_LABEL}' is set by the broker on each run", "job.labels")
    return template


def first_due(created_at, offset):
    """When a schedule created at ``created_at`` runs first."""
    return created_at + offset


def due_after_fire(schedule, fired_at):
    """The next due time as firing a run at ``fired_at`` sets it, or None when the run's end decides.

    ``every``: the first ``first_run_at + k * period`` after ``fired_at``. ``after_end``
    and run-once schedules: None.
    """
    period = schedule["period"]
    if period is None or schedule["policy"] != "every":
        return None
    first = schedule["first_run_at"]
    slots = max(1, math.floor((fired_at - first) / period) + 1)
    due = first + slots * period
    return due if due > fired_at else due + period  # float rounding may land on fired_at itself


def due_after_end(schedule, ended_at):
    """The next due time once the run under way ended at ``ended_at``; None for a run-once schedule (removed).

    ``after_end``: ``ended_at + period``. ``every``: the time set when the run fired
    (already past if the run overran: the next run fires at once).
    """
    period = schedule["period"]
    if period is None:
        return None
    if schedule["policy"] == "after_end":
        return ended_at + period
    stored = schedule.get("next_run_at")
    return stored if stored is not None else due_after_fire(schedule, ended_at)
