"""Built-in plugin ``fraction``: split a numeric range into HTTP calls of ``gap`` ids each.

A fraction job's payload is an ``http`` task plus ``min``, ``max`` and ``gap``. Its
leaves are the linear chunks ``[min, min+gap-1]``, ``[min+gap, min+2*gap-1]``, ...,
the last ending at ``max``; each leaf is one ``http`` job with ``_min``, ``_max`` and
``_gap`` injected into the task's ``json`` (or into its ``query_string`` when it has
one).

Splitting is hierarchical with a bounded fan-out (see :func:`children`): the
fraction job and every split step create at most ``fraction_fanout`` children, so
no process ever holds more than one step's children however large the range, and
the tree is explored lazily from the left, so the first leaves run at once and only
a few steps wait at any time. Leaves sort before steps: steps use spare capacity. The fraction job
waits for its leaves (``await_children``): its progress counts them, it ends ``done``
when every leaf is done and ``failed`` as soon as one runs out of attempts.
"""
import math

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.core.job import MAX_PRIORITY
from tubeway.plugins.hookspecs import JobKind

KIND = "fraction"
#: The kind of a split step: only the fraction itself is of kind ``fraction``.
STEP_KIND = "fraction.step"
LEAF_KIND = "http"
MIN_GAP = 10
STEP_ATTEMPTS = 3
#: Deeper than any split goes (a fan-out of at least 2 over at most 2**63 leaves).
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


def children(job, payload, first, stop, fanout):
    """Specs for the children of a step covering leaves ``[first, stop)``.

    A small range becomes its leaves. A larger one is cut into chunks of about
    ``1/(fanout-1)`` of it, explored lazily from the left: the step makes only its
    first chunk (the chunk's leaves, or a step splitting it further) and one
    continuation step for the chunks after it. So a step makes at most ``fanout``
    jobs, the first leaf is a few steps away however large the range, and only a
    handful of steps per level wait at any time.
    """
    root = payload.get("root") or job["id"]
    base = payload.get("base", job["priority"])
    common = {"namespace": job["namespace"], "queue": job["queue"], "labels": {"fraction": root}}
    inherited = {"root": root, "base": base, "leaf_attempts": payload.get("leaf_attempts", job["max_attempts"]),
                 "leaf_backoff": payload.get("leaf_backoff", job["backoff"])}
    chunk = payload.get("chunk")
    if chunk is None and stop - first <= fanout:
        return leaves(job, payload, first, stop, common, base)
    chunk = chunk or math.ceil((stop - first) / (fanout - 1))
    head = min(first + chunk, stop)
    depth = payload.get("depth", 0)
    if chunk <= fanout - 1:
        made = leaves(job, payload, first, head, common, base)
    else:
        made = [step(payload, inherited, common, first, head, None, depth + 1)]
    if head < stop:
        made.append(step(payload, inherited, common, head, stop, chunk, depth))
    return made


def step(payload, inherited, common, first, stop, chunk, depth):
    """A split step covering leaves ``[first, stop)`` (a continuation when ``chunk`` is given).

    Deeper steps sort first, so the tree is walked depth first and the leftmost
    leaves come first; every step sorts after every leaf.
    """
    body = {**payload, **inherited, "leaves": [first, stop], "chunk": chunk, "depth": depth}
    priority = min(MAX_PRIORITY, inherited["base"] + MAX_DEPTH - depth)
    return {**common, "kind": STEP_KIND, "attempts": STEP_ATTEMPTS, "priority": priority, "payload": body}


def leaves(job, payload, first, stop, common, base):
    """The ``http`` jobs of leaves ``[first, stop)``; they sort before steps, so steps fill spare capacity only."""
    low, high, gap = payload["min"], payload["max"], payload["gap"]
    made = []
    for index in range(first, stop):
        start, end = leaf_bounds(low, high, gap, index)
        made.append({**common, "kind": LEAF_KIND, "priority": max(-MAX_PRIORITY, base - 1),
                     "payload": inject(payload["task"], start, end, gap), "parent": payload.get("root") or job["id"],
                     "attempts": payload.get("leaf_attempts", job["max_attempts"]),
                     "backoff": payload.get("leaf_backoff", job["backoff"])})
    return made


@hookimpl
def tubeway_job_kinds():
    """``fraction``: a range split into ``http`` calls of ``gap`` ids; ``fraction.step``: one split step of it."""
    return [JobKind(KIND, True, "Splits min..max into http calls of gap ids each; waits for them all."),
            JobKind(STEP_KIND, True, "One split step of a fraction: makes the next leaves and steps.")]


@hookimpl
def tubeway_validate_job(spec):
    """The payload needs a ``task`` object and a valid ``min``/``max``/``gap``."""
    if spec["kind"] not in (KIND, STEP_KIND):
        return
    payload = spec.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("task"), dict):
        raise ValidationError("a fraction's payload needs 'task' (an http task) and 'min', 'max', 'gap'", "payload")
    check_range(payload.get("min"), payload.get("max"), payload.get("gap"))
    body = payload["task"].get("json")
    if body not in (None, "", [], {}) and not isinstance(body, dict):
        raise ValidationError("a fraction's 'json' must be an object: each leaf adds '_min', '_max' and '_gap' to it",
                              "json")


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
