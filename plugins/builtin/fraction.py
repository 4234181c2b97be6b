"""Built-in plugin ``fraction``: split a numeric range into HTTP calls of ``gap`` ids each.

A fraction job's payload is an ``http`` task plus ``min``, ``max`` and ``gap``. Its
leaves are the linear chunks ``[min, min+gap-1]``, ``[min+gap, min+2*gap-1]``, ...,
the last ending at ``max``; each leaf is one ``http`` job with ``_min``, ``_max`` and
``_gap`` injected into the task's ``json`` (or into its ``query_string`` when it has
one).

Splitting is hierarchical with a bounded fan-out: the fraction job and every split
step create at most ``fraction_fanout`` children, each step covering a contiguous
run of leaves, so no process ever holds more than one step's children however large
the range. Priorities order the work (see :func:`order`) so the first leaves run
right away, workers never wait between steps, and the queue stays shallow. The fraction job
waits for its leaves (``await_children``): its progress counts them, it ends ``done``
when every leaf is done and ``failed`` as soon as one runs out of attempts.
"""
import math

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.core.job import MAX_PRIORITY
from tubeway.plugins.hookspecs import JobKind

KIND = "fraction"
LEAF_KIND = "http"
MIN_GAP = 10
STEP_ATTEMPTS = 3
#: Deeper than any split can go (fan-out >= 2 over at most 2**63 leaves).
MAX_DEPTH = 64
LIMIT = 2**63 - 1


def check_range(low, high, gap):
    """Raise :class:`ValidationError` naming the field unless ``min <= max`` and ``gap >= 10``, all integers."""
    for name, value in (("min", low), ("max", high), ("gap", gap)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LIMIT:
            raise ValidationError(f"'{name}' must be an integer from 0 to {LIMIT}", name)
    if gap < MIN_GAP:
        raise ValidationError(f"'gap' must be at least {MIN_GAP}", "gap")
    if low > high:
        raise ValidationError("'min' must not be greater than 'max'", "min")


def leaf_count(low, high, gap):
    """How many leaves a range has."""
    return (high - low) // gap + 1


def leaf_bounds(low, high, gap, index):
    """``(_min, _max)`` of leaf ``index``."""
    start = low + index * gap
    return start, min(start + gap - 1, high)


def inject(task, start, end, gap):
    """The ``http`` payload of one leaf: the task with its bounds injected."""
    bounds = {"_min": start, "_max": end, "_gap": gap}
    leaf = dict(task)
    query = task.get("query_string")
    if query and not task.get("json"):
        leaf["query_string"] = {**query, **{k: str(v) for k, v in bounds.items()}}
        return leaf
    body = task.get("json")
    leaf["json"] = {**body, **bounds} if isinstance(body, dict) else bounds
    leaf.pop("query_string", None)
    leaf.pop("body", None)
    return leaf


def split(first, stop, fanout):
    """Contiguous runs covering leaves ``[first, stop)``, at most ``fanout`` of them."""
    size = math.ceil((stop - first) / fanout)
    return [(start, min(start + size, stop)) for start in range(first, stop, size)]


def order(base, depth, kind):
    """The priority of a child: steps that make leaves, then leaves, then upper steps deepest first.

    Steps whose children are leaves run before the leaves already queued, so up to
    ``fanout`` squared leaves wait ready and workers never idle between steps; upper
    steps run only when no leaf is waiting, deepest first, so the queue stays shallow.
    """
    offset = {"leaf": -1, "leaf-step": -2}.get(kind, MAX_DEPTH - depth)
    return max(-MAX_PRIORITY, min(MAX_PRIORITY, base + offset))


def children(job, payload, first, stop, fanout):
    """Specs for the children of a step covering leaves ``[first, stop)``: leaves, or smaller steps."""
    root = payload.get("root") or job["id"]
    base = payload.get("base", job["priority"])
    depth = payload.get("depth", 0) + 1
    common = {"namespace": job["namespace"], "queue": job["queue"], "labels": {"fraction": root}}
    low, high, gap = payload["min"], payload["max"], payload["gap"]
    if stop - first <= fanout:
        leaves = []
        for index in range(first, stop):
            start, end = leaf_bounds(low, high, gap, index)
            leaves.append({**common, "kind": LEAF_KIND, "priority": order(base, depth, "leaf"),
                           "payload": inject(payload["task"], start, end, gap), "parent": root,
                           "attempts": payload.get("leaf_attempts", job["max_attempts"]),
                           "backoff": payload.get("leaf_backoff", job["backoff"])})
        return leaves
    # Steps carry the fraction's base priority, attempts and backoff down to the leaves they make.
    inherited = {"base": base, "leaf_attempts": payload.get("leaf_attempts", job["max_attempts"]),
                 "leaf_backoff": payload.get("leaf_backoff", job["backoff"])}
    return [{**common, "kind": KIND, "attempts": STEP_ATTEMPTS,
             "priority": order(base, depth, "leaf-step" if b - a <= fanout else "step"),
             "payload": {**payload, **inherited, "root": root, "depth": depth, "leaves": [a, b]}}
            for a, b in split(first, stop, fanout)]


@hookimpl
def tubeway_job_kinds():
    """``fraction``: a range split into ``http`` calls of ``gap`` ids."""
    return [JobKind(KIND, True, "Splits min..max into http calls of gap ids each; waits for them all.")]


@hookimpl
def tubeway_validate_job(spec):
    """The payload needs a ``task`` object and a valid ``min``/``max``/``gap``."""
    if spec["kind"] != KIND:
        return
    payload = spec.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("task"), dict):
        raise ValidationError("a fraction's payload needs 'task' (an http task) and 'min', 'max', 'gap'", "payload")
    check_range(payload.get("min"), payload.get("max"), payload.get("gap"))


@hookimpl
def tubeway_run_job(job, context):
    """Spawn the next level of this fraction (or its leaves); the fraction job itself waits for every leaf."""
    payload = job["payload"]
    fanout = max(2, int(getattr(context.settings, "fraction_fanout", 64)))
    total = leaf_count(payload["min"], payload["max"], payload["gap"])
    first, stop = payload.get("leaves") or (0, total)
    context.spawn(children(job, payload, first, stop, fanout))
    if "root" not in payload:
        context.await_children(total)
        return {"leaves": total, "min": payload["min"], "max": payload["max"], "gap": payload["gap"]}
    return {"leaves": [first, stop]}
