"""The BullMQ proxy API's words for Tubeway's: job specs, JobJson, list statuses as queries; and the
built-in plugin ``bullmq``, giving a queue's endpoint ``{"job": JobJson, "token": lock}``.

Pure functions, no Tornado: the adapter (:mod:`tubeway.broker.http.bullmq`) and a worker
process building the body it pushes to an endpoint both use them; the checks are
:mod:`.bullmq_checks`'s. Ids: a job added with ``opts.jobId`` is known by it (stored as the
broker's ``unique_key``, scoped to its queue by :func:`~.bullmq_checks.unique_key`); any other
job by its per-queue ``sequence``, as BullMQ numbers jobs per queue.
"""
from tubeway import hookimpl
from tubeway.broker.http.bullmq_checks import falsy, given_backoff, is_number, keep_count, unique_key

NAMESPACE = "bullmq"
#: BullMQ's default queue prefix: ``queueQualifiedName`` is ``bull:<queue>``.
QUEUE_PREFIX = "bull"
#: BullMQ backoffs have no upper bound: this many seconds stands for none.
NO_MAX_DELAY = 1e9
#: Each status as a LIST query: native states, and a priority range where the state alone is not enough.
STATUS_QUERIES = {
    "waiting": {"states": ["queued"], "priority": [{"lte": 0}]},
    "prioritized": {"states": ["queued"], "priority": [{"gte": 1}]},
    "delayed": {"states": ["delayed"]},
    "active": {"states": ["running", "cancelling"]},
    "completed": {"states": ["done"]},
    "failed": {"states": ["failed", "cancelled"]},
}


def job_spec(job, queue, kind):
    """The broker job spec of one checked BullMQ job."""
    opts = job.get("opts") or {}
    spec = {
        "namespace": NAMESPACE, "queue": queue, "kind": kind, "name": job["name"],
        "payload": {"data": job["data"], "opts": opts},
        "priority": int(opts.get("priority") or 0),
        "lifo": bool(opts.get("lifo", False)),
        "attempts": max(1, int(opts.get("attempts") or 1)),
    }
    if opts.get("delay"):
        spec["delay"] = opts["delay"] / 1000
    if given_backoff(opts.get("backoff")) is not None:
        spec["backoff"] = broker_backoff(opts["backoff"])
    if not falsy(opts.get("jobId")):
        spec["unique_key"] = unique_key(queue, opts["jobId"])
    for field, target in (("removeOnComplete", "keep_done"), ("removeOnFail", "keep_failed")):
        keep = keep_count(opts.get(field), field)
        if keep is not None:
            spec[target] = keep
    return spec


def broker_backoff(backoff):
    """A BullMQ backoff (ms) as the broker's (seconds, no cap, no jitter: delays are exact lower bounds)."""
    if is_number(backoff):
        backoff = {"type": "fixed", "delay": backoff}
    return {"type": backoff["type"], "delay": (backoff.get("delay") or 0) / 1000, "max_delay": NO_MAX_DELAY,
            "jitter": False}


def bull_id(record):
    """The id BullMQ clients know a job by: its ``jobId``, else its per-queue sequence number."""
    key = record.get("unique_key")
    if key:
        return key[len(unique_key(record["queue"], "")):]
    sequence = record.get("sequence")
    return None if sequence is None else str(sequence)


def _ms(seconds):
    return None if seconds is None else int(round(seconds * 1000))


def job_json(record):
    """A broker record as BullMQ's JobJson (times in epoch milliseconds)."""
    payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
    opts = payload.get("opts") if isinstance(payload.get("opts"), dict) else {}
    ended = record.get("state") in ("done", "failed", "cancelled")
    error = record.get("error")
    progress = record.get("progress")
    return {
        "id": bull_id(record),
        "name": record.get("name"),
        "data": payload.get("data"),
        "opts": opts,
        "progress": 0 if progress is None else progress,
        "returnvalue": record.get("result"),
        "failedReason": error,
        "stacktrace": [error] if isinstance(error, str) else [],
        "attemptsMade": record.get("attempts") or 0,
        "delay": opts.get("delay") if is_number(opts.get("delay")) else 0,
        "timestamp": _ms(record.get("created_at")),
        "processedOn": _ms(record.get("started_at")),
        "finishedOn": _ms(record.get("finished_at")) if ended else None,
        "queueQualifiedName": f"{QUEUE_PREFIX}:{record.get('queue')}",
    }


@hookimpl
def tubeway_push_body(job):
    """A BullMQ job's endpoint gets ``{"job": JobJson, "token": <lock token>}``; other namespaces: no opinion."""
    return {"job": job_json(job), "token": job.get("lock")} if job.get("namespace") == NAMESPACE else None
