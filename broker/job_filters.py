"""The LIST command's query: filters with several values each, label selectors, time ranges, order, paging.

A LIST body is checked whole here, before storage sees any of it, and becomes a
:class:`JobFilter`; :mod:`tubeway.broker.store.listing` turns that into one SQL query.
Every dialect's list (and the native API's) is one of these.

Body fields (all optional)::

    namespace, queue, kind, state     one value each
    ids, names, queues, kinds, states, sequences
                                      lists: a job matches one of the values
    labels                            {key: value}: every one must match
    selector                          [{"key", "op", "values"}]: every requirement must hold;
                                      op is one of SELECTOR_OPS
    created_at, updated_at, priority  [{"gte"?, "gt"?, "lte"?, "lt"?}]: a job matches one range
    order                             one of ORDERS (default "created": oldest first; "dispatch": the order
                                      queued jobs are handed out in, priority then lifo-aware age)
    limit                             1..MAX_LIST (default 100)
    cursor                            the ``next_cursor`` of the page before (order "created" only)
    offset                            jobs to skip (instead of a cursor)
    total                             true: also count every match (``total`` in the reply)
"""
import math
from dataclasses import dataclass, field

from tubeway.core.errors import ValidationError
from tubeway.core.job import MAX_LABEL_VALUE, MAX_NAME, STATES, storable

MAX_LIST = 5000
#: Most values in one multi-value filter or selector requirement.
MAX_VALUES = 1000
MAX_REQUIREMENTS = 50
#: Label selector operators: equals, differs (or absent), in a set, not in it (or absent), present, absent.
SELECTOR_OPS = ("=", "!=", "in", "notin", "exists", "!exists")
ORDERS = ("created", "-created", "updated", "-updated", "dispatch")
RANGE_OPS = ("gte", "gt", "lte", "lt")
SINGLE = ("namespace", "queue", "kind", "state")
MULTI = {"ids": "id", "names": "name", "queues": "queue", "kinds": "kind", "states": "state"}


@dataclass
class JobFilter:
    """A checked LIST query: ``equal`` maps a column to the values it may hold (any of them)."""

    equal: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    selector: list = field(default_factory=list)
    ranges: dict = field(default_factory=dict)
    order: str = "created"
    limit: int = 100
    after: int = 0
    offset: int = 0
    total: bool = False


def _text(value, name):
    if not isinstance(value, str) or not storable(value) or len(value) > max(MAX_NAME, MAX_LABEL_VALUE):
        raise ValidationError(f"'{name}' must hold strings of at most {MAX_LABEL_VALUE} characters", name)
    return value


def _values(body, name, check):
    values = body[name]
    if not isinstance(values, list) or len(values) > MAX_VALUES:
        raise ValidationError(f"'{name}' must be a list of at most {MAX_VALUES} values", name)
    return [check(value, name) for value in values]


def _state(value, name):
    if value not in STATES:
        raise ValidationError(f"unknown state '{value}' (one of {', '.join(STATES)})", name)
    return value


def _sequence(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValidationError(f"'{name}' must hold integers", name)
    return value


def _count(body, name, default, minimum, maximum):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationError(f"'{name}' must be an integer from {minimum} to {maximum}", name)
    return value


def _requirement(item):
    if not isinstance(item, dict) or set(item) - {"key", "op", "values"} or item.get("op") not in SELECTOR_OPS:
        raise ValidationError(f"a selector requirement is {{key, op, values}} with op one of "
                              f"{', '.join(SELECTOR_OPS)}", "selector")
    values = _values(item, "values", _text) if item.get("values") is not None else []
    if item["op"] in ("=", "!=") and len(values) != 1 or item["op"] in ("in", "notin") and not values:
        raise ValidationError(f"selector op '{item['op']}' needs {'one value' if '=' in item['op'] else 'values'}",
                              "selector")
    return {"key": _text(item.get("key"), "selector"), "op": item["op"], "values": values}


def _ranges(body, name):
    ranges = body[name]
    if not isinstance(ranges, list) or not ranges or len(ranges) > MAX_VALUES:
        raise ValidationError(f"'{name}' must be a non-empty list of ranges", name)
    checked = []
    for item in ranges:
        if not isinstance(item, dict) or not item or set(item) - set(RANGE_OPS) or not all(
                not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) for v in item.values()):
            raise ValidationError(f"'{name}' ranges map {', '.join(RANGE_OPS)} to times", name)
        checked.append({op: float(v) for op, v in item.items()})
    return checked


def _cursor(body):
    cursor = body.get("cursor")
    try:
        after = int(cursor) if cursor not in (None, "") else 0
        if not 0 <= after < 2**63:
            raise ValueError(cursor)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError("'cursor' is not a cursor this server gave", "cursor") from None
    return after


def parse_filter(body):
    """Check a LIST body and return its :class:`JobFilter` (ValidationError naming the field)."""
    query = JobFilter()
    for name in SINGLE:
        if body.get(name) is not None:
            query.equal[name] = [_state(body[name], name) if name == "state" else _text(body[name], name)]
    for name, column in MULTI.items():
        if body.get(name) is not None:
            values = _values(body, name, _state if name == "states" else _text)
            query.equal[column] = sorted(set(values) & set(query.equal.get(column, values)))
    if body.get("sequences") is not None:
        query.equal["sequence"] = _values(body, "sequences", _sequence)
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValidationError("'labels' must map keys to strings", "labels")
    query.labels = {_text(key, "labels"): _text(value, "labels") for key, value in labels.items()}
    selector = body.get("selector") or []
    if not isinstance(selector, list) or len(selector) > MAX_REQUIREMENTS:
        raise ValidationError(f"'selector' must be a list of at most {MAX_REQUIREMENTS} requirements", "selector")
    query.selector = [_requirement(item) for item in selector]
    for name in ("created_at", "updated_at", "priority"):
        if body.get(name) is not None:
            query.ranges[name] = _ranges(body, name)
    query.order = body.get("order") or "created"
    if query.order not in ORDERS:
        raise ValidationError(f"'order' must be one of {', '.join(ORDERS)}", "order")
    query.limit = _count(body, "limit", 100, 1, MAX_LIST) if body.get("limit") else 100
    query.after = _cursor(body)
    if query.after and query.order != "created":
        raise ValidationError("a 'cursor' pages only the order 'created'", "cursor")
    query.offset = _count(body, "offset", 0, 0, 2**63 - 1)
    if not isinstance(body.get("total", False), bool):
        raise ValidationError("'total' must be a boolean", "total")
    query.total = body.get("total", False)
    return query
