"""The broker's Prometheus metrics: job counts, throughput counters, dispatch latency, workers."""
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class JobCounts:
    """A collector reading jobs by namespace, queue and state from storage at scrape time."""

    def __init__(self, store):
        self.store = store

    def collect(self):
        family = GaugeMetricFamily("tubeway_jobs", "Jobs by namespace, queue and state",
                                   labels=["namespace", "queue", "state"])
        for namespace, queue, state, count in self.store.counts():
            family.add_metric([namespace, queue, state], count)
        yield family


class BrokerMetrics:
    """Counters the broker updates as jobs move, rendered in the Prometheus text format."""

    def __init__(self, store, registry_size):
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(JobCounts(store))
        labels = ["namespace", "queue"]
        self._enqueued = Counter("tubeway_jobs_enqueued", "Jobs stored", labels, registry=self.registry)
        self._dispatched = Counter("tubeway_jobs_dispatched", "Jobs handed to a worker or taker", labels,
                                   registry=self.registry)
        self._finished = Counter("tubeway_jobs_finished", "Jobs ended, by final state", labels + ["state"],
                                 registry=self.registry)
        self._latency = Histogram("tubeway_dispatch_latency_seconds", "From ready to dispatched",
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._workers = Gauge("tubeway_workers_connected", "Worker processes connected", registry=self.registry)
        self._workers.set_function(registry_size)
        self._children = {}

    def _child(self, counter, *labels):
        # labels() costs microseconds per call; jobs come by the thousand.
        key = (id(counter), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def enqueued(self, record):
        """A job was stored."""
        self._child(self._enqueued, record["namespace"], record["queue"]).inc()

    def dispatched(self, record, now):
        """A job was handed out ``now``; observe how long it waited since ready."""
        self._child(self._dispatched, record["namespace"], record["queue"]).inc()
        ready_at = max(record["created_at"], record.get("run_at") or 0.0)
        self._latency.observe(max(0.0, now - ready_at))

    def finished(self, record):
        """A job ended."""
        self._child(self._finished, record["namespace"], record["queue"], record["state"]).inc()

    def render(self):
        """Everything in the Prometheus text exposition format."""
        return generate_latest(self.registry).decode()
