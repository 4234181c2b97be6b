"""The broker's Prometheus metrics: job and schedule counts, throughput counters, dispatch latency, workers.

The broker counts in plain dicts and a bucket list on its hot path (a job costs a
dict increment, not a prometheus_client child lookup and lock), and a collector
turns them into metric families when scraped; prometheus_client renders the text.

Series per queue are capped, so memory and a scrape stay bounded however many
queues come and go: the first ``QUEUE_SERIES_LIMIT`` queues (``namespace``,
``queue``) the broker meets after it starts keep series of their own for as long
as it runs; every later queue is counted under the label ``queue="_other"`` of its
namespace (or ``namespace="_other"`` too, for a namespace none of those queues is
in). A series is never dropped, so each counter only grows for its label set (a
queue really named ``_other`` shares its series). The ``tubeway_jobs`` and
``tubeway_schedules`` gauges, read from storage at each scrape, are folded the same
way, summed per state (jobs) or per queue (schedules).
"""
import bisect

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

QUEUE_SERIES_LIMIT = 1000
OTHER = "_other"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Observations counted into fixed buckets (upper bounds), with their sum."""

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value):
        """Count one observation."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self):
        """Cumulative ``(le, count)`` pairs as Prometheus wants them."""
        total, pairs = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts):
            total += count
            pairs.append((bound, total))
        return pairs


class QueueLabels:
    """The ``(namespace, queue)`` label values of a queue: its own, or ``_other`` past the cap."""

    def __init__(self, limit=QUEUE_SERIES_LIMIT):
        self.limit = limit
        self.own = set()  # queues with series of their own, at most ``limit``
        self.namespaces = set()  # the namespaces of those queues

    def __call__(self, namespace, queue):
        key = (namespace, queue)
        if key in self.own:
            return key
        if len(self.own) < self.limit:
            self.own.add(key)
            self.namespaces.add(namespace)
            return key
        return (namespace if namespace in self.namespaces else OTHER, OTHER)


class BrokerMetrics:
    """Counters the broker updates as jobs move, rendered in the Prometheus text format."""

    def __init__(self, workers_connected):
        self.workers_connected = workers_connected
        self._job_counts = ()
        self._schedule_counts = ()
        self.labels = QueueLabels()
        self.enqueued_by_queue = {}
        self.dispatched_by_queue = {}
        self.finished_by_queue = {}
        self.schedule_runs_by_queue = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def enqueued(self, record):
        """A job was stored."""
        key = self.labels(record["namespace"], record["queue"])
        self.enqueued_by_queue[key] = self.enqueued_by_queue.get(key, 0) + 1

    def dispatched(self, record, now):
        """A job was handed out ``now``; observe how long it waited since it was ready."""
        key = self.labels(record["namespace"], record["queue"])
        self.dispatched_by_queue[key] = self.dispatched_by_queue.get(key, 0) + 1
        ready_at = max(record["created_at"], record.get("run_at") or 0.0)
        self.latency.observe(max(0.0, now - ready_at))

    def finished(self, record):
        """A job ended."""
        key = (*self.labels(record["namespace"], record["queue"]), record["state"])
        self.finished_by_queue[key] = self.finished_by_queue.get(key, 0) + 1

    def schedule_fired(self, schedule):
        """A schedule started a run."""
        key = self.labels(schedule["namespace"], schedule["queue"])
        self.schedule_runs_by_queue[key] = self.schedule_runs_by_queue.get(key, 0) + 1

    def collect(self):
        """The metric families (called by prometheus_client when rendering)."""
        jobs = GaugeMetricFamily("tubeway_jobs", "Jobs by namespace, queue and state",
                                 labels=["namespace", "queue", "state"])
        for key, count in self._folded_job_counts().items():
            jobs.add_metric(list(key), count)
        yield jobs
        yield _counter("tubeway_jobs_enqueued", "Jobs stored", ["namespace", "queue"], self.enqueued_by_queue)
        yield _counter("tubeway_jobs_dispatched", "Jobs handed to a worker or taker", ["namespace", "queue"],
                       self.dispatched_by_queue)
        yield _counter("tubeway_jobs_finished", "Jobs ended, by final state", ["namespace", "queue", "state"],
                       self.finished_by_queue)
        schedules = GaugeMetricFamily("tubeway_schedules", "Schedules by namespace and queue",
                                      labels=["namespace", "queue"])
        for key, count in self._folded_schedule_counts().items():
            schedules.add_metric(list(key), count)
        yield schedules
        yield _counter("tubeway_schedule_runs", "Runs schedules started", ["namespace", "queue"],
                       self.schedule_runs_by_queue)
        latency = HistogramMetricFamily("tubeway_dispatch_latency_seconds", "From ready to dispatched")
        latency.add_metric([], self.latency.buckets(), self.latency.sum)
        yield latency
        workers = GaugeMetricFamily("tubeway_workers_connected", "Worker processes connected")
        workers.add_metric([], self.workers_connected())
        yield workers

    def _folded_job_counts(self):
        counts = {}
        for namespace, queue, state, count in self._job_counts:
            key = (*self.labels(namespace, queue), state)
            counts[key] = counts.get(key, 0) + count
        return counts

    def _folded_schedule_counts(self):
        counts = {}
        for namespace, queue, count in self._schedule_counts:
            key = self.labels(namespace, queue)
            counts[key] = counts.get(key, 0) + count
        return counts

    def render(self, job_counts, schedule_counts=()):
        """Everything in the Prometheus text exposition format, with the rows of ``count_jobs`` and
        ``count_schedules``."""
        self._job_counts, self._schedule_counts = job_counts, schedule_counts
        try:
            return generate_latest(self.registry).decode()
        finally:
            self._job_counts, self._schedule_counts = (), ()


def _counter(name, documentation, labels, counts):
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(counts.items()):
        family.add_metric(list(key), value)
    return family
