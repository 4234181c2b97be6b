"""The broker's Prometheus metrics: per-queue series, capped however many queues come and go."""
from prometheus_client.parser import text_string_to_metric_families

from tubeway.broker.metrics import OTHER, QUEUE_SERIES_LIMIT, BrokerMetrics


def record(queue, namespace="default", state="done"):
    return {"namespace": namespace, "queue": queue, "state": state, "created_at": 0.0, "run_at": None}


def run(metrics, queue, namespace="default", state="done"):
    """One job through its life: stored, handed out, ended."""
    metrics.enqueued(record(queue, namespace))
    metrics.dispatched(record(queue, namespace), now=1.0)
    metrics.finished(record(queue, namespace, state))


def samples(metrics, job_counts=()):
    """``{(sample name, frozenset of labels): value}`` of one scrape."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(metrics.render(job_counts)) for s in family.samples}


def queue_series(scrape, name):
    return {labels: value for (sample, labels), value in scrape.items() if sample == name}


def labels(namespace, queue, **more):
    return frozenset({"namespace": namespace, "queue": queue, **more}.items())


def test_each_queue_has_its_own_series():
    metrics = BrokerMetrics(lambda: 2)
    run(metrics, "a")
    run(metrics, "a", state="failed")
    run(metrics, "b", namespace="n2")
    scrape = samples(metrics, [("default", "a", "queued", 4)])
    assert queue_series(scrape, "tubeway_jobs_enqueued_total") == {labels("default", "a"): 2, labels("n2", "b"): 1}
    assert queue_series(scrape, "tubeway_jobs_finished_total") == {
        labels("default", "a", state="done"): 1, labels("default", "a", state="failed"): 1,
        labels("n2", "b", state="done"): 1}
    assert queue_series(scrape, "tubeway_jobs") == {labels("default", "a", state="queued"): 4}
    assert scrape[("tubeway_workers_connected", frozenset())] == 2


def test_queues_past_the_limit_are_folded_into_other_and_series_stay_bounded():
    metrics = BrokerMetrics(lambda: 0)
    for n in range(QUEUE_SERIES_LIMIT):
        run(metrics, f"q{n}")
    for n in range(QUEUE_SERIES_LIMIT, 3 * QUEUE_SERIES_LIMIT):
        run(metrics, f"q{n}")
        run(metrics, f"q{n}", namespace=f"fresh{n}")  # a namespace none of the first queues is in
    run(metrics, "q0")  # a queue that has its own series keeps it
    for series in (metrics.enqueued_by_queue, metrics.dispatched_by_queue, metrics.finished_by_queue):
        assert len(series) == QUEUE_SERIES_LIMIT + 2
    scrape = samples(metrics)
    dispatched = queue_series(scrape, "tubeway_jobs_dispatched_total")
    assert dispatched[labels("default", "q0")] == 2
    assert dispatched[labels("default", OTHER)] == 2 * QUEUE_SERIES_LIMIT
    assert dispatched[labels(OTHER, OTHER)] == 2 * QUEUE_SERIES_LIMIT
    assert sum(queue_series(scrape, "tubeway_jobs_finished_total").values()) == 5 * QUEUE_SERIES_LIMIT + 1


def test_counters_never_go_back_for_a_label_set():
    metrics = BrokerMetrics(lambda: 0)
    before = {}
    for step in range(4):
        for n in range(step * QUEUE_SERIES_LIMIT // 2, (step + 1) * QUEUE_SERIES_LIMIT // 2):
            run(metrics, f"q{n}", state="done" if n % 3 else "failed")
        scrape = samples(metrics)
        assert all(scrape.get(key, -1) >= value for key, value in before.items() if key[0].endswith("_total"))
        before = scrape


def test_the_job_count_gauge_is_folded_the_same_way():
    metrics = BrokerMetrics(lambda: 0)
    rows = [("default", f"q{n}", "queued", 1) for n in range(QUEUE_SERIES_LIMIT + 5)]
    rows += [("default", "q0", "done", 3), ("other", "x", "done", 2)]
    gauge = queue_series(samples(metrics, rows), "tubeway_jobs")
    assert len(gauge) == QUEUE_SERIES_LIMIT + 3
    assert gauge[labels("default", "q0", state="done")] == 3
    assert gauge[labels("default", OTHER, state="queued")] == 5
    assert gauge[labels(OTHER, OTHER, state="done")] == 2
