"""After the chaos: does storage agree with what every client was told?

:func:`settled` is the cheap condition polled while the system drains (no job queued,
running or delayed anywhere; the sink has every acknowledged call). :class:`Audit` then
reads every acknowledged job back and collects *problems* (broken promises: the test
fails on them) and *facts* (redeliveries, the longest wait: reported, never failed on).
"""
import collections
import json

import requests

from consumer import accepted_result
from producers import FRACTION_GAP, FRACTION_QUEUE, TASK_QUEUE

UNENDED = ("queued", "running", "delayed")
TIMEOUT = 10


def sink_calls(sink):
    """``(tasks, leaves)``: Counters of task tokens and of ``(fraction token, _min, _max)`` the sink received."""
    tasks, leaves = collections.Counter(), collections.Counter()
    for body in sink.json_bodies():
        if "token" in body:
            tasks[body["token"]] += 1
        elif "frac" in body:
            leaves[(body["frac"], body.get("_min"), body.get("_max"))] += 1
    return tasks, leaves


def expected_leaves(body):
    """The ``(_min, _max)`` of every leaf of a fraction body: exact linear chunks of ``gap`` ids."""
    low, high, gap = body["min"], body["max"], body["gap"]
    return [(start, min(start + gap - 1, high)) for start in range(low, high + 1, gap)]


def unended_counts(session, url):
    """Jobs queued, running or delayed in every namespace, from ``GET /api/v1/queues`` (None if unanswered)."""
    try:
        response = session.get(f"{url}/api/v1/queues", timeout=TIMEOUT)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return sum(q["counts"][state] for q in response.json()["queues"] for state in UNENDED)


def settled(session, url, ledger, sink):
    """True when no job is unended anywhere and the sink has every acknowledged task and leaf."""
    if unended_counts(session, url) != 0:
        return False
    tasks, leaves = sink_calls(sink)
    if any(tasks[ack.key] == 0 for ack in ledger.of("task")):
        return False
    return all(leaves[(ack.key, *leaf)] for ack in ledger.of("fraction") for leaf in expected_leaves(ack.sent))


def list_jobs(session, url, **filters):
    """Every job matching the native list filters (following cursors)."""
    jobs, cursor = [], None
    while True:
        params = {**filters, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = session.get(f"{url}/api/v1/jobs", params=params, timeout=TIMEOUT).json()
        jobs += page["jobs"]
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


class Audit:
    """Reads back every acknowledged job; collects problems and facts."""

    def __init__(self, url, ledger, sink):
        self.url = url
        self.ledger = ledger
        self.sink = sink
        self.session = requests.Session()
        self.problems = collections.defaultdict(list)  # category -> descriptions
        self.facts = collections.Counter()
        self.longest = (0.0, None, None)  # seconds, dialect, key

    def run(self):
        """Check every dialect and the leftovers; returns the problems, by category."""
        self.native()
        self.accepted()
        self.tasks()
        self.fractions()
        self.leftovers()
        return self.problems

    def problem(self, category, text):
        """Note a broken promise."""
        self.problems[category].append(text)

    def _waited(self, dialect, key, ack, record):
        finished = record.get("finished_at")
        if finished is not None and finished - ack.at > self.longest[0]:
            self.longest = (finished - ack.at, dialect, key)

    def _get(self, path):
        response = self.session.get(self.url + path, timeout=TIMEOUT)
        return response.status_code, (response.json() if response.content else None)

    def native(self):
        """Each job done with its result, or failed only with its attempts used up."""
        for ack in self.ledger.of("native"):
            status, job = self._get(f"/api/v1/jobs/{ack.key}")
            if status != 200:
                self.problem("native: GET failed", f"{ack.key}: {status} {job}")
                continue
            self._waited("native", ack.key, ack, job)
            self.facts["native retried (attempts > 1)"] += job["attempts"] > 1
            spec = ack.sent
            if job["kind"] != spec["kind"] or job["payload"] != spec["payload"]:
                self.problem("native: stored job differs", f"{ack.key}: {job['kind']} {job['payload']!r}, sent {spec}")
            elif job["state"] == "failed" and job["attempts"] >= job["max_attempts"]:
                self.facts["native failed, attempts used up"] += 1
            elif job["state"] != "done":
                self.problem(f"native: {job['state']}" + (" with attempts left" if job["state"] == "failed" else ""),
                             describe(job))
            elif job["result"] != (spec["payload"] if spec["kind"] == "echo" else None):
                self.problem("native: wrong result", f"{ack.key}: {job['result']!r} for {spec}")

    def accepted(self):
        """Each job done (in the Accepted API's words) with the result its consumer reported."""
        for ack in self.ledger.of("accepted"):
            status, job = self._get(f"/jobs/{ack.key}")
            if status != 200:
                self.problem("accepted: GET failed", f"{ack.key}: {status} {job}")
                continue
            _, record = self._get(f"/api/v1/jobs/{ack.key}")
            params = ack.sent["params"]
            told = {"status": "done", "queue": ack.sent["queue"], "params": params, "result": accepted_result(params)}
            shown = {key: job.get(key) for key in told}
            if shown != told:
                category = "done, wrong job or result" if job["status"] == "done" else job["status"]
                self.problem(f"accepted: {category}", f"{shown} (expected {told}); record: {describe(record)}")
                continue
            self._waited("accepted", ack.key, ack, record)
            redelivered = self.ledger.deliveries[ack.key] > 1
            died = self.ledger.abandoned[ack.key] > 0
            self.facts["accepted redelivered"] += redelivered
            self.facts["accepted redelivered after a consumer died"] += redelivered and died

    def tasks(self):
        """Each task called at least once, and its job ended in storage."""
        received, _ = sink_calls(self.sink)
        stored = {job["payload"]["json"]["token"]: job
                  for job in list_jobs(self.session, self.url, namespace="queue", queue=TASK_QUEUE, kind="http")}
        for ack in self.ledger.of("task"):
            job = stored.get(ack.key)
            if job is None:
                self.problem("task: not in storage", ack.key)
                continue
            self._waited("task", ack.key, ack, job)
            if received[ack.key] == 0:
                self.problem("task: never called", f"{ack.key}: {describe(job)}")
            elif job["state"] not in ("done", "failed") or (job["state"] == "failed"
                                                             and job["attempts"] < job["max_attempts"]):
                self.problem(f"task: {job['state']}", f"{ack.key}: {describe(job)}")
            self.facts["tasks called more than once"] += received[ack.key] > 1

    def fractions(self):
        """Each fraction done, and every one of its leaves called."""
        _, leaves = sink_calls(self.sink)
        stored = {job["payload"]["task"]["json"]["frac"]: job
                  for job in list_jobs(self.session, self.url, namespace="queue", queue=FRACTION_QUEUE,
                                       kind="fraction")}
        for ack in self.ledger.of("fraction"):
            job = stored.get(ack.key)
            wanted = expected_leaves(ack.sent)
            missing = [leaf for leaf in wanted if not leaves[(ack.key, *leaf)]]
            if job is None or job["state"] != "done" or missing:
                state = job["state"] if job else "not in storage"
                self.problem(f"fraction: {state}" + (", leaves never called" if missing else ""),
                             f"{ack.key} (max {ack.sent['max']}, gap {FRACTION_GAP}): leaves never called "
                             f"{missing}; {describe(job)}")
                continue
            self._waited("fraction", ack.key, ack, job)
            self.facts["fraction leaves"] += len(wanted)
            self.facts["fraction leaves called more than once"] += sum(leaves[(ack.key, *leaf)] > 1
                                                                       for leaf in wanted)

    def leftovers(self):
        """No job at all (acknowledged or not, any namespace) is still queued, running or delayed."""
        for state in UNENDED:
            jobs = list_jobs(self.session, self.url, state=state)
            where = collections.Counter((job["namespace"], job["queue"], job["kind"]) for job in jobs)
            for (namespace, queue, kind), count in sorted(where.items()):
                self.problem(f"any job: still {state}", f"{count} in {namespace}/{queue} of kind {kind}")


def describe(job):
    """A stored job in one line, with what tells where it is stuck."""
    if not job:
        return "no such job in storage"
    fields = ("id", "namespace", "queue", "kind", "state", "attempts", "max_attempts", "worker", "error",
              "progress", "created_at", "started_at", "finished_at", "updated_at", "run_at", "lease_until")
    return json.dumps({field: job.get(field) for field in fields})


def problem_report(problems, examples=3):
    """The problems by category: a count and the first few examples of each."""
    lines = []
    for category, items in problems.items():
        lines.append(f"{category}: {len(items)}")
        shown = items if category.startswith("any job") else items[:examples]
        lines += [f"    {item}" for item in shown]
    return "\n".join(lines)
