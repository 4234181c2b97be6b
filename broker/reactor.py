"""The broker process: one ROUTER socket, group commit, dispatch, heartbeats.

Each turn of the loop drains every message waiting on the socket (up to
``group_commit_max``), applies them, fires due timers, takes back the leases of
lost workers and hands ready jobs to workers with credit, all in one storage
transaction; only after it commits are replies and jobs sent. Durable and fast
together: at most one flush to disk per turn, and only in turns that reply
(see :mod:`tubeway.broker.store.durability`).
"""
import logging
import signal
import socket as socketlib
import time

import zmq

from tubeway.core import protocol as p
from tubeway.core.errors import JobNotFound, ProtocolError, TubewayError
from tubeway.core.setting_defs import mask_url
from tubeway.broker.background import BackgroundReads
from tubeway.broker.commands import PARKED, ClientCommands
from tubeway.broker.dispatch import Dispatcher
from tubeway.broker.lifecycle import Lifecycle, public
from tubeway.broker.metrics import BrokerMetrics
from tubeway.broker.outbox import Outbox
from tubeway.broker.registry import Registry
from tubeway.broker.store.durability import AckDurability
from tubeway.broker.store.models import open_database
from tubeway.broker.store.queries import Store
from tubeway.broker.timers import Timers
from tubeway.broker.waiters import Waiters
from tubeway.broker.workerlink import WorkerLink

log = logging.getLogger("tubeway.broker")
#: Largest message part the broker reads (a peer sending a larger one is disconnected), unless
#: four times ``max_body_size`` is larger.
MAX_MESSAGE = 256 * 1024 * 1024


class Broker:
    """The broker: storage, caches, workers and the socket loop that drives them."""

    def __init__(self, settings, db, clock=time.time):
        self.settings = settings
        self.clock = clock
        self.store = Store(db)
        self.durability = AckDurability(db, settings.sqlite_synchronous)
        self.dispatcher = Dispatcher(self.store, int(settings.ready_window))
        self.timers = Timers(self.store, clock)
        self.waiters = Waiters()
        self.registry = Registry(float(settings.worker_liveness_seconds), float(settings.heartbeat_seconds))
        self.metrics = BrokerMetrics(lambda: len(self.registry))
        self.reads = BackgroundReads(db)
        self.outbox = Outbox(before_replies=self.durability.before_replies)
        self.jobs = Lifecycle(self.store, self.dispatcher, self.timers, self.waiters, self.metrics,
                              self.outbox, settings, clock)
        self.commands = ClientCommands(self.jobs, self.registry, self.metrics, self.waiters, clock, self.reads)
        self.workers = WorkerLink(self.jobs, self.registry, self.outbox, clock)
        self.drops = self.workers.drops
        self.socket = None
        self.running = False

    # -- start ------------------------------------------------------------------------------
    def recover(self):
        """At start: every job leased to a worker returns to the queue (or ends, if cancelling); caches are rebuilt.

        The windows are loaded first: a window made by a re-queued job before then
        would count as complete and hide the rest of its queue in storage.
        """
        self.dispatcher.load()
        self.jobs.endpoints.load()
        with self.store.atomic():
            held = self.store.running_on_workers()
            for record in held:
                if record["state"] == "cancelling":  # its worker stopped with this broker: it was cancelled
                    self.jobs.stopped_cancelling(record)
                    continue
                self.store.update(record["seq"], attempts=max(0, record["attempts"] - 1))
                record["attempts"] = max(0, record["attempts"] - 1)
                self.jobs.requeue(record)
            self.jobs.schedules.load()
        self.timers.refresh()
        return len(held)

    def bind(self, endpoint, context=None):
        """Bind the ROUTER socket."""
        context = context or zmq.Context.instance()
        self.socket = context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 1000)
        self.socket.setsockopt(zmq.MAXMSGSIZE, max(MAX_MESSAGE, 4 * int(self.settings.max_body_size)))
        self.socket.bind(endpoint)
        self.outbox.socket = self.socket

    # -- the loop ---------------------------------------------------------------------------
    def run(self):
        """Serve until :meth:`stop`."""
        self.running = True
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.reads.read_fd, zmq.POLLIN)
        while self.running:
            poller.poll(self._poll_timeout_ms())
            self.turn(self._drain())

    def stop(self, *_):
        """Ask the loop to end after the current turn."""
        self.running = False

    def close(self, linger=None):
        """Release the background reader and the socket (after :meth:`run` returned)."""
        self.reads.close()
        self.durability.close()
        if self.socket is not None:
            self.socket.close(linger)

    def _poll_timeout_ms(self):
        now = self.clock()
        wake = [now + float(self.settings.heartbeat_seconds)]
        for due in (self.timers.next_at(), self.waiters.next_deadline()):
            if due is not None:
                wake.append(due)
        return max(0.0, min(wake) - now) * 1000

    def _drain(self):
        batch = []
        limit = int(self.settings.group_commit_max)
        while len(batch) < limit:
            try:
                batch.append(self.socket.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        return batch

    def turn(self, batch):
        """Apply one batch of messages and everything due, commit, then send."""
        now = self.clock()
        with self.store.atomic():
            for frames in batch:
                self._handle(frames)
            self.reads.run_finished()
            self._fire_timers(now)
            self._expire_waiters(now)
            self.workers.check_liveness()
            self.workers.dispatch()
            self._serve_takers()
            self.jobs.groups.flush()
            self.store.optimize(now)
            self.durability.before_commit(self.outbox.has_replies())
        self.outbox.flush()
        self.workers.heartbeat()

    def _handle(self, frames):
        """One message off the socket; whatever it holds, the loop goes on."""
        identity = frames[0]
        header = frames[1] if len(frames) > 1 else b""
        try:
            if header == p.WORKER and len(frames) in (3, 4):
                self.workers.handle(identity, frames[2], frames[3] if len(frames) > 3 else b"")
            elif header == p.CLIENT and len(frames) == 5:
                self._handle_client(identity, frames[2], frames[3], frames[4])
            else:
                self.drops.dropped_message(identity, f"{len(frames)} frames with header {header[:8]!r}")
        except Exception:  # a bug must not take the broker down; the message's savepoint was rolled back
            log.exception("a message from %s could not be handled; dropped", identity[:16].hex())

    def _handle_client(self, identity, command, request_id, raw):
        handler = self.commands.handlers.get(command)
        try:
            if handler is None:
                raise ProtocolError(f"unknown command {command!r}")
            try:
                body = p.unpack(raw)
            except ValueError as error:
                raise ProtocolError(str(error)) from None
            if not isinstance(body, dict):
                raise ProtocolError("a request body must be a map")
            with self.store.atomic():
                data = handler(identity, request_id, body)
        except TubewayError as error:
            self.outbox.reply(identity, request_id, p.failure(error))
            return
        except Exception as error:  # a bug must not take the broker down or lose the batch
            log.exception("command %r failed", command)
            self.outbox.reply(identity, request_id, p.failure(TubewayError(f"internal error: {error}")))
            return
        if data is not PARKED:
            self.outbox.reply(identity, request_id, p.ok(data))

    def _fire_timers(self, now):
        for timer in self.timers.due(now):
            if timer.name == "delayed":
                self.jobs.release_delayed(now)
            elif timer.name == "lease":
                for record in timer.take_due(now):
                    self.jobs.requeue(record)
            elif timer.name == "schedule":
                self.jobs.schedules.fire_due(now)
            elif timer.name == "deadline":
                for record in timer.take_due(now):
                    self.jobs.finish(record, "failed", error=f"job timed out after {record['timeout']:g} s")
            else:
                self.store.purge_expired(now)
                timer.refresh()

    def _expire_waiters(self, now):
        for waiter in self.waiters.expired(now):
            if "id" in waiter.body:
                record = self.store.get(waiter.body["id"], now=now)
                reply = p.ok(public(record)) if record else p.failure(JobNotFound("job is gone"))
            else:
                reply = p.ok(None)
            self.outbox.reply(waiter.identity, waiter.request_id, reply)

    def _serve_takers(self):
        takers = self.waiters.live_takers()
        if not takers or not self.dispatcher.has_ready({kind for w in takers for kind in w.body["kinds"]}):
            return
        for waiter in takers:
            record = self.commands.try_take(waiter.body)
            if record is not None:
                waiter.done = True
                self.outbox.reply(waiter.identity, waiter.request_id, p.ok(record))


def serve(settings):
    """Run the broker process until SIGTERM or SIGINT."""
    from tubeway.core.logs import setup_logging

    setup_logging("broker", settings.log_level)
    db = open_database(settings.database_url, synchronous=settings.sqlite_synchronous)
    log.info("storage: %s", mask_url(settings.database_url))
    broker = Broker(settings, db)
    returned = broker.recover()
    if returned:
        log.info("returned %d jobs leased before the restart to their queues", returned)
    broker.bind(settings.broker)
    log.info("listening on %s for clients and workers (host %s)", settings.broker, socketlib.gethostname())
    signal.signal(signal.SIGTERM, broker.stop)
    signal.signal(signal.SIGINT, broker.stop)
    try:
        broker.run()
    finally:
        broker.close()
        db.close()
        log.info("stopped")

