"""The ZeroMQ wire protocol between the broker and its peers.

The broker binds one ROUTER socket. Peers connect DEALER sockets and start every
message with a header frame naming who they are and the protocol version:

* clients (HTTP front ends, CLI, benchmarks): ``[CLIENT, command, request_id, body]``;
  the broker answers ``[CLIENT, REPLY, request_id, body]`` with body
  ``{"ok": true, "data": ...}`` or ``{"ok": false, "error": {"code", "message", ...}}``.
* workers: ``[WORKER, command, body]`` both ways; there is no request id.

Bodies are msgpack maps. Heartbeats go both ways on the same socket every
``heartbeat_seconds``; a peer silent for ``worker_liveness_seconds`` is lost.
"""
import msgpack

#: Header frames (name + protocol version).
CLIENT = b"TWC1"
WORKER = b"TWW1"
HEADERS = (CLIENT, WORKER)

# Client -> broker commands (each answered by one REPLY). Commands naming a job by
# "id" also take an optional "namespace": when given, a job of another namespace is
# reported not found, so one dialect never sees another's jobs.
SUBMIT = b"SUBMIT"      # {"jobs": [spec]} -> {"ids": [id], "created": [bool], "sequences": [n or None],
                        # "created_at": time}: a job a unique key found is not created (no sequence)
GET = b"GET"            # {"id"} or {"namespace", "unique_key"} -> job
LIST = b"LIST"          # a query (see tubeway.broker.job_filters) -> {"jobs", "next_cursor", "total"}
QUEUES = b"QUEUES"      # {} -> {"queues": [{"namespace", "queue", "counts": {state: n}}]}
RETRY = b"RETRY"        # {"id"} -> job (failed or cancelled jobs only)
CANCEL = b"CANCEL"      # {"id"} -> job (jobs not yet ended only): cancelled, or cancelling while
                        # a worker process stops it (it ends cancelled once stopped)
METADATA = b"METADATA"  # {"id", "labels", "annotations"}: {key: value or None (removes)} -> job
NOTE = b"NOTE"          # {"id", "lock"?, "progress"?, "logs"?: [line]} -> job: progress set, lines appended,
                        # by the holder of the attempt's lock token (given to workers with each job)
DELETE = b"DELETE"      # {"id"} -> job as it was before removal
TAKE = b"TAKE"          # {"namespace", "queues", "lease", "block"} -> job or None
UPDATE = b"UPDATE"      # {"id", "state", "result", "error", "lease"} -> job
WAIT = b"WAIT"          # {"id", "timeout"} -> job once ended, or as it is at the timeout
HEALTH = b"HEALTH"      # {} -> {"workers": n, "kinds": [kind]}
METRICS = b"METRICS"    # {} -> {"text": Prometheus exposition}
# Schedules (see tubeway.core.schedule); one is named by its namespace and id.
SCHEDULE_ADD = b"SCHEDULE_ADD"          # schedule spec {"id", "job", "period", "offset", "policy"} -> schedule
SCHEDULE_GET = b"SCHEDULE_GET"          # {"namespace", "id"} -> schedule
SCHEDULE_LIST = b"SCHEDULE_LIST"        # {"namespace", "queue", "limit", "cursor"} -> {"schedules", "next_cursor"}
SCHEDULE_DELETE = b"SCHEDULE_DELETE"    # {"namespace", "id"} -> schedule as it was before removal
# HTTP endpoints that process a queue's ``push`` jobs (see tubeway.broker.endpoints).
ENDPOINT_SET = b"ENDPOINT_SET"          # {"namespace", "queue", "url", "method", "headers", "timeout", "concurrency"}
                                        # -> endpoint (replacing the queue's)
ENDPOINT_LIST = b"ENDPOINT_LIST"        # {"namespace"?} -> {"endpoints": [endpoint]}
ENDPOINT_DELETE = b"ENDPOINT_DELETE"    # {"namespace", "queue"} -> endpoint as it was
REPLY = b"REPLY"

CLIENT_COMMANDS = frozenset({SUBMIT, GET, LIST, QUEUES, RETRY, CANCEL, METADATA, NOTE, DELETE, TAKE, UPDATE, WAIT, HEALTH, METRICS,
                             SCHEDULE_ADD, SCHEDULE_GET, SCHEDULE_LIST, SCHEDULE_DELETE,
                             ENDPOINT_SET, ENDPOINT_LIST, ENDPOINT_DELETE})

# Worker <-> broker commands.
READY = b"READY"            # w->b {"kinds", "queues", "credit", "pid", "host"}
HEARTBEAT = b"HEARTBEAT"    # b->w {}; w->b {"held": [id], "seen": n}: the jobs it holds, after n JOBS
                            # messages received on this connection (the broker reconciles its leases)
JOBS = b"JOBS"              # b->w {"jobs": [job]}
RESULTS = b"RESULTS"        # w->b {"results": [result], "started"?: [id], "credit"?: n}; each result frees
                            # one credit; "started" names jobs begun since; "credit" is the new credit
DISCONNECT = b"DISCONNECT"  # both ways, {}: forget me / register again
ABORT = b"ABORT"            # b->w {"ids": [id]}: leased jobs were cancelled or deleted; stop them. The
                            # worker answers each in RESULTS once stopped (``returned`` if never begun);
                            # the broker wants the answer of a job it marked cancelling, no other

WORKER_COMMANDS = frozenset({READY, HEARTBEAT, RESULTS, DISCONNECT})

#: Most jobs one worker may hold at once ("credit"); the broker drops a READY asking for more.
MAX_CREDIT = 100000

#: A result's ``state`` for a job the worker hands back unstarted (it is stopping): the
#: broker queues it again without counting the attempt.
RETURNED = "returned"

#: Keys of one result a worker sends back ("duration": seconds the attempt ran, a float).
#: A ``done`` result may add two more: ``"spawn"``, a list of at most 10,000 job specs
#: made by ``normalize_spec`` (and checked by their kinds' plugins) to store in the same
#: transaction as the result, and ``"await"``, an int >= 0: the job stays ``running``
#: (no lease) until that many jobs naming it as ``parent`` have ended.
#: ``"lease"`` echoes the job's ``started_at`` as it was dispatched: a result of an older
#: lease of the same job (cancelled, then retried) never matches the new one.
RESULT_KEYS = ("id", "attempt", "lease", "state", "result", "error", "retry", "logs", "progress", "duration")

_packer = msgpack.Packer(use_bin_type=True)


def pack(body):
    """Encode a message body."""
    return _packer.pack(body)


def _no_extensions(code, data):
    raise ValueError(f"msgpack extension type {code} is not part of the protocol")


def unpack(frame):
    """Decode a message body; anything that is not plain msgpack raises ValueError."""
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=False, ext_hook=_no_extensions, timestamp=1)
    except ValueError:
        raise
    except Exception as error:  # unhashable map keys, bad UTF-8, nesting too deep: all just bad input
        raise ValueError(f"undecodable body: {type(error).__name__}: {error}") from None


def ok(data=None):
    """A successful reply body."""
    return {"ok": True, "data": data}


def failure(error):
    """A failed reply body from a :class:`~tubeway.core.errors.TubewayError`."""
    return {"ok": False, "error": error.to_wire()}
