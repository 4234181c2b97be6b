"""Broker clients: :class:`BrokerClient` (blocking) and :class:`AsyncBrokerClient` (asyncio).

Both speak the client side of :mod:`tubeway.core.protocol` over one DEALER socket
and share their command methods through :class:`BrokerCalls`: on the sync client a
method returns the reply data, on the async client it returns an awaitable.
A failed reply raises the matching :mod:`tubeway.core.errors` class; no reply
within ``timeout`` seconds raises :class:`~tubeway.core.errors.BrokerUnavailable`.
"""
import asyncio
import itertools
import os
import time

import zmq

from tubeway.core import protocol as p
from tubeway.core.errors import BrokerUnavailable, from_wire

DEFAULT_TIMEOUT = 10.0


class BrokerCalls:
    """The broker's client commands, one method each (see :mod:`tubeway.core.protocol`)."""

    def submit(self, jobs, timeout=None):
        """Store normalized job specs in one transaction: ``{"ids", "created"}``."""
        return self.call(p.SUBMIT, {"jobs": list(jobs)}, timeout)

    def get(self, job_id, namespace=None):
        """The job record with this id (``namespace``, when given, must match too)."""
        return self.call(p.GET, {"id": job_id, "namespace": namespace})

    def get_unique(self, unique_key, namespace="default"):
        """The live job holding a client-chosen ``unique_key`` in ``namespace``."""
        return self.call(p.GET, {"unique_key": unique_key, "namespace": namespace})

    def list_jobs(self, namespace=None, queue=None, state=None, labels=None, limit=100, cursor=None, kind=None,
                  **query):
        """A page of jobs: ``{"jobs", "next_cursor", "total"}``; ``query`` takes the other LIST fields
        (multi-value filters, ``selector``, time ranges, ``order``, ``offset``, ``total``: see
        :mod:`tubeway.broker.job_filters`)."""
        body = {"namespace": namespace, "queue": queue, "state": state, "labels": labels or {},
                "limit": limit, "cursor": cursor, "kind": kind, **query}
        return self.call(p.LIST, body)

    def queues(self):
        """Every namespace and queue with job counts per state."""
        return self.call(p.QUEUES, {})

    def retry(self, job_id, namespace=None):
        """Queue a failed or cancelled job again."""
        return self.call(p.RETRY, {"id": job_id, "namespace": namespace})

    def cancel(self, job_id, namespace=None):
        """Cancel a job that has not ended: it is ``cancelled``, or ``cancelling`` while its worker stops it."""
        return self.call(p.CANCEL, {"id": job_id, "namespace": namespace})

    def note(self, job_id, progress=None, logs=None, lock=None, namespace=None):
        """Set a running job's progress and append log lines; with ``lock``, only while that attempt holds it."""
        body = {"id": job_id, "progress": progress, "logs": list(logs or ()), "lock": lock, "namespace": namespace}
        return self.call(p.NOTE, body)

    def set_metadata(self, job_id, labels=None, annotations=None, namespace=None):
        """Change a job's labels and annotations (``{key: value}``; a ``None`` value removes the key)."""
        body = {"id": job_id, "labels": labels or {}, "annotations": annotations or {}, "namespace": namespace}
        return self.call(p.METADATA, body)

    def delete(self, job_id, namespace=None):
        """Cancel (if needed) and remove a job; returns it as it was."""
        return self.call(p.DELETE, {"id": job_id, "namespace": namespace})

    def take(self, namespace, queues=None, lease=None, block=0.0, kinds=("external",)):
        """Lease the next job of ``kinds`` in ``namespace`` to this caller (waiting up to ``block`` s), or None.

        Only kinds no worker process runs make sense here (the ``external`` kind by default).
        """
        body = {"namespace": namespace, "kinds": list(kinds), "queues": queues, "lease": lease, "block": block}
        return self.call(p.TAKE, body, timeout=block + self.timeout)

    def update(self, job_id, state, result=None, error=None, lease=None, namespace=None):
        """Report on a taken job: ``done``/``failed`` end it, ``running`` extends its lease."""
        body = {"id": job_id, "state": state, "result": result, "error": error, "lease": lease,
                "namespace": namespace}
        return self.call(p.UPDATE, body)

    def wait(self, job_id, timeout, namespace=None):
        """The job once it has ended, or as it is after ``timeout`` seconds."""
        body = {"id": job_id, "timeout": timeout, "namespace": namespace}
        return self.call(p.WAIT, body, timeout=timeout + self.timeout)

    def health(self, timeout=None):
        """``{"workers": n, "kinds": [...]}`` from the broker."""
        return self.call(p.HEALTH, {}, timeout)

    def metrics(self):
        """The broker's metrics in the Prometheus text format."""
        return self.call(p.METRICS, {})

    def add_schedule(self, schedule):
        """Store a schedule spec (see :mod:`tubeway.core.schedule`); returns the schedule, its id set."""
        return self.call(p.SCHEDULE_ADD, dict(schedule))

    def get_schedule(self, schedule_id, namespace="default"):
        """The schedule with this id in ``namespace``."""
        return self.call(p.SCHEDULE_GET, {"namespace": namespace, "id": schedule_id})

    def list_schedules(self, namespace=None, queue=None, limit=100, cursor=None):
        """A page of schedules, oldest first: ``{"schedules", "next_cursor"}``."""
        return self.call(p.SCHEDULE_LIST, {"namespace": namespace, "queue": queue, "limit": limit, "cursor": cursor})

    def set_endpoint(self, namespace, queue, url, method="POST", headers=None, timeout=3.0, concurrency=1):
        """Register (or replace) the HTTP endpoint that processes a queue's ``push`` jobs."""
        body = {"namespace": namespace, "queue": queue, "url": url, "method": method, "headers": headers or {},
                "timeout": timeout, "concurrency": concurrency}
        return self.call(p.ENDPOINT_SET, body)

    def list_endpoints(self, namespace=None):
        """``{"endpoints": [...]}``: every registered endpoint (of ``namespace``, when given)."""
        return self.call(p.ENDPOINT_LIST, {"namespace": namespace})

    def delete_endpoint(self, namespace, queue):
        """Remove a queue's endpoint (its ``push`` jobs wait again); returns it as it was."""
        return self.call(p.ENDPOINT_DELETE, {"namespace": namespace, "queue": queue})

    def delete_schedule(self, schedule_id, namespace="default"):
        """Remove a schedule (it never fires again; its runs stay); returns it as it was."""
        return self.call(p.SCHEDULE_DELETE, {"namespace": namespace, "id": schedule_id})


def _new_socket(context, endpoint):
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    return socket


def _request_ids():
    prefix = os.getpid().to_bytes(4, "big")
    return (prefix + n.to_bytes(8, "big") for n in itertools.count(1))


def _unwrap(reply):
    if reply.get("ok"):
        return reply.get("data")
    raise from_wire(reply.get("error") or {})


class BrokerClient(BrokerCalls):
    """A blocking broker client for one thread (CLI, tests, benchmarks)."""

    def __init__(self, endpoint, timeout=DEFAULT_TIMEOUT, context=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = _new_socket(self._context, endpoint)
        self._ids = _request_ids()

    def call(self, command, body, timeout=None):
        """Send one command and block for its reply."""
        request_id = next(self._ids)
        self._socket.send_multipart([p.CLIENT, command, request_id, p.pack(body)])
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(remaining * 1000):
                self._reconnect()
                raise BrokerUnavailable(f"no reply from the broker at {self.endpoint}")
            frames = self._socket.recv_multipart()
            if len(frames) == 4 and frames[2] == request_id:
                return _unwrap(p.unpack(frames[3]))

    def _reconnect(self):
        # A fresh socket drops replies to requests we gave up on.
        self._socket.close(0)
        self._socket = _new_socket(self._context, self.endpoint)

    def close(self):
        """Close the socket."""
        self._socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncBrokerClient(BrokerCalls):
    """An asyncio broker client: many concurrent requests over one socket, matched by id.

    It drives a plain ZeroMQ socket from the event loop itself: sends never block
    (DONTWAIT; a full queue means the broker is unreachable), and replies are read
    whenever the socket's file descriptor signals. That costs a fraction of
    ``zmq.asyncio``'s per-message futures, which matters at thousands of requests
    a second. ZeroMQ's descriptor is edge-triggered, so the socket is also drained
    after every send.
    """

    def __init__(self, endpoint, timeout=DEFAULT_TIMEOUT, context=None):
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = _new_socket(self._context, endpoint)
        self._ids = _request_ids()
        self._pending = {}
        self._loop = None
        self._drain_soon = False

    async def call(self, command, body, timeout=None):
        """Send one command and await its reply."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._attach(loop)
        request_id = next(self._ids)
        future = loop.create_future()
        try:
            self._socket.send_multipart([p.CLIENT, command, request_id, p.pack(body)], zmq.DONTWAIT)
        except zmq.Again:
            raise BrokerUnavailable(f"the broker at {self.endpoint} is not taking requests") from None
        self._pending[request_id] = future
        self._schedule_drain()
        timer = loop.call_later(timeout or self.timeout, _expire, future)
        try:
            reply = await future
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
        if reply is None:
            raise BrokerUnavailable(f"no reply from the broker at {self.endpoint}")
        return _unwrap(reply)

    def _attach(self, loop):
        if self._loop is not None:
            self._loop.remove_reader(self._socket.FD)
        self._loop = loop
        loop.add_reader(self._socket.FD, self._drain)

    def _schedule_drain(self):
        if not self._drain_soon:
            self._drain_soon = True
            self._loop.call_soon(self._drain)

    def _drain(self):
        self._drain_soon = False
        while self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            frames = self._socket.recv_multipart(zmq.DONTWAIT)
            if len(frames) != 4:
                continue
            future = self._pending.get(frames[2])
            if future is not None and not future.done():
                future.set_result(p.unpack(frames[3]))

    def close(self):
        """Stop reading and close the socket."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._socket.FD)
        self._socket.close(0)


def _expire(future):
    if not future.done():
        future.set_result(None)
