"""Client commands on schedules: SCHEDULE_ADD, SCHEDULE_GET, SCHEDULE_LIST, SCHEDULE_DELETE.

Every field of every body is checked here before the broker's
:class:`~tubeway.broker.schedules.Schedules` sees it; a bad one is a
:class:`~tubeway.core.errors.ValidationError` naming it.
"""
from tubeway.core import protocol as p
from tubeway.core.errors import ValidationError
from tubeway.core.schedule import check_schedule_id, normalize_schedule
from tubeway.broker.lifecycle import wire_spec
from tubeway.broker.schedules import public_schedule

MAX_LIST = 1000


def _name(body, field, required):
    value = body.get(field)
    if value is None and not required:
        return None
    return check_schedule_id(value, field)


def _cursor(body):
    cursor = body.get("cursor")
    if cursor in (None, ""):
        return 0
    if not isinstance(cursor, str) or not cursor.isdigit() or len(cursor) > 19 or int(cursor) >= 2**63:
        raise ValidationError("'cursor' is not a cursor this server gave", "cursor")
    return int(cursor)


class ScheduleCommands:
    """Handlers of the schedule commands, bound to the broker's schedules."""

    def __init__(self, schedules):
        self.schedules = schedules
        self.handlers = {p.SCHEDULE_ADD: self.add, p.SCHEDULE_GET: self.get, p.SCHEDULE_LIST: self.list,
                         p.SCHEDULE_DELETE: self.delete}

    def add(self, identity, request_id, body):
        """Store a schedule (checked again: a bad client cannot write a half-formed one)."""
        spec = normalize_schedule(body, normalize_job=wire_spec)
        try:
            return self.schedules.add(spec)
        except TypeError as error:  # orjson could not encode the payload; the savepoint is rolled back
            raise ValidationError(f"the job's payload must be JSON: {error}", "job.payload") from None

    def get(self, identity, request_id, body):
        """One schedule, by namespace and id."""
        namespace = _name(body, "namespace", required=True)
        return public_schedule(self.schedules.get(namespace, check_schedule_id(body.get("id"))))

    def list(self, identity, request_id, body):
        """A page of schedules with a keyset cursor."""
        limit = body.get("limit")
        limit = 100 if limit is None else limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValidationError(f"'limit' must be an integer from 1 to {MAX_LIST}", "limit")
        records = self.schedules.list(_name(body, "namespace", False), _name(body, "queue", False), limit,
                                      _cursor(body))
        next_cursor = str(records[-1]["seq"]) if len(records) == limit else None
        return {"schedules": [public_schedule(r) for r in records], "next_cursor": next_cursor}

    def delete(self, identity, request_id, body):
        """Remove a schedule; the reply is the schedule as it was."""
        namespace = _name(body, "namespace", required=True)
        return self.schedules.delete(namespace, check_schedule_id(body.get("id")))
