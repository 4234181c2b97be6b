"""The fraction plugin's arithmetic and splitting, with a stand-in context (no worker, no broker)."""
import types

import pytest

from tubeway.core.errors import ValidationError
from tubeway.core.job import normalize_backoff
from tubeway.plugins.builtin import fraction

TASK = {"method": "POST", "url": "http://127.0.0.1:9/x", "headers": {}, "json": {"param": "value"}}


class Context:
    def __init__(self, fanout):
        self.settings = types.SimpleNamespace(fraction_fanout=fanout)
        self.spawned = []
        self.awaited = None

    def spawn(self, specs):
        self.spawned.extend(specs)

    def await_children(self, total):
        self.awaited = total


def root_job(low, high, gap, task=TASK):
    return {"id": "root", "namespace": "queue", "queue": "w", "priority": 0, "max_attempts": 2,
            "backoff": normalize_backoff(None), "payload": {"task": task, "min": low, "max": high, "gap": gap}}


def run_tree(job, fanout):
    """Run the root and every step it makes; returns (leaf specs, largest spawn, root context)."""
    pending, leaves, largest, root_context = [job], [], 0, None
    while pending:
        current = pending.pop()
        context = Context(fanout)
        fraction.tubeway_run_job(current, context)
        root_context = root_context or context
        largest = max(largest, len(context.spawned))
        for n, spec in enumerate(context.spawned):
            if spec["kind"] == fraction.STEP_KIND:
                pending.append({**spec, "id": f"{current['id']}.{n}", "max_attempts": spec["attempts"],
                                "backoff": normalize_backoff(None)})
            else:
                leaves.append(spec)
    return leaves, largest, root_context


def ranges(leaves):
    return sorted((leaf["payload"]["json"]["_min"], leaf["payload"]["json"]["_max"]) for leaf in leaves)


def test_the_documents_example_gives_9991_exact_leaves():
    leaves, largest, context = run_tree(root_job(1000, 1000000, 100), fanout=64)
    assert context.awaited == 9991 and len(leaves) == 9991 and largest <= 64
    got = ranges(leaves)
    assert got[0] == (1000, 1099) and got[1] == (1100, 1199) and got[-1] == (1000000, 1000000)
    assert all(b + 1 == c for (_, b), (c, _) in zip(got, got[1:]))


@pytest.mark.parametrize("low,high,gap", [(0, 9, 10), (0, 10, 10), (5, 5, 10), (0, 12345, 17), (7, 1000, 10)])
def test_leaves_cover_the_range_exactly(low, high, gap):
    leaves, largest, _ = run_tree(root_job(low, high, gap), fanout=3)
    got = ranges(leaves)
    assert got[0][0] == low and got[-1][1] == high and largest <= 3
    assert all(b - a + 1 == gap for a, b in got[:-1]) and 1 <= got[-1][1] - got[-1][0] + 1 <= gap
    assert all(b + 1 == c for (_, b), (c, _) in zip(got, got[1:]))


def test_leaves_are_http_jobs_of_the_root_with_its_attempts_and_a_lower_priority():
    leaves, _, _ = run_tree(root_job(0, 999, 10), fanout=4)
    assert {leaf["kind"] for leaf in leaves} == {"http"}
    assert {leaf["parent"] for leaf in leaves} == {"root"}
    assert {leaf["attempts"] for leaf in leaves} == {2}
    assert all(leaf["priority"] < 0 for leaf in leaves)
    assert leaves[0]["payload"]["json"]["param"] == "value" and leaves[0]["payload"]["json"]["_gap"] == 10


def test_bounds_go_into_the_query_string_when_the_task_has_one():
    task = {"method": "GET", "url": "http://h/x", "query_string": {"a": "b"}}
    [leaf] = fraction.children({"id": "r", "namespace": "q", "queue": "w", "priority": 0, "max_attempts": 1,
                                "backoff": None}, {"task": task, "min": 0, "max": 5, "gap": 10}, 0, 1, 64)
    assert leaf["payload"]["query_string"] == {"a": "b", "_min": "0", "_max": "5", "_gap": "10"}
    assert "json" not in leaf["payload"]


def test_a_huge_range_never_spawns_more_than_the_fanout_per_step():
    job = root_job(0, 10**9 - 1, 10)
    context = Context(64)
    fraction.tubeway_run_job(job, context)
    assert context.awaited == 10**8 and len(context.spawned) <= 64
    first_step = {**context.spawned[0], "id": "s", "max_attempts": 3, "backoff": None}
    deeper = Context(64)
    fraction.tubeway_run_job(first_step, deeper)
    assert len(deeper.spawned) <= 64


@pytest.mark.parametrize("low,high,gap,field", [
    (-1, 10, 10, "min"), (0, "9", 10, "max"), (0, 10, 9, "gap"), (11, 10, 10, "min"), (0, 10, True, "gap"),
])
def test_invalid_ranges_name_the_field(low, high, gap, field):
    with pytest.raises(ValidationError) as error:
        fraction.check_range(low, high, gap)
    assert error.value.field == field


def test_best_first_scheduling_keeps_the_queue_shallow_and_starts_leaves_at_once():
    """Run a fraction the way the broker orders work (lowest priority, then oldest) and watch the queue."""
    import heapq
    import itertools

    fanout, order = 4, itertools.count()
    queue = [(0, next(order), root_job(0, 4**5 * 10 - 1, 10))]
    ran_before_first_leaf, seen_leaf, most_waiting_leaves, leaves = 0, False, 0, []
    while queue:
        _, _, job = heapq.heappop(queue)
        if job.get("kind") == "http":
            seen_leaf = True
            leaves.append(job)
            continue
        ran_before_first_leaf += not seen_leaf
        context = Context(fanout)
        fraction.tubeway_run_job(job, context)
        for n, spec in enumerate(context.spawned):
            child = {**spec, "id": f"{job['id']}.{n}", "max_attempts": spec["attempts"],
                     "backoff": normalize_backoff(None)}
            heapq.heappush(queue, (spec["priority"], next(order), child))
        most_waiting_leaves = max(most_waiting_leaves, sum(1 for _, _, j in queue if j.get("kind") == "http"))
    assert len(ranges(leaves)) == 4**5 and ran_before_first_leaf <= 5 + fanout
    assert most_waiting_leaves <= fanout * fanout


def test_only_the_fraction_itself_is_of_kind_fraction():
    # run_tree follows fraction.step jobs: a step of any other kind would show up among the leaves.
    leaves, _, _ = run_tree(root_job(0, 99999, 10), fanout=8)
    assert len(leaves) == 10000 and {leaf["kind"] for leaf in leaves} == {"http"}
