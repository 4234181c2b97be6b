"""Messages the broker sends once the turn's transaction has committed.

Messages to workers leave first; replies to clients wait for ``before_replies`` (the
flush to stable storage, see :mod:`tubeway.broker.store.durability`), since a reply
acknowledges. A job may so begin on a worker before its submit is flushed: a power
loss then loses a job nobody was told about, which may have run.
"""
import logging

import zmq

from tubeway.core import protocol as p

log = logging.getLogger(__name__)


class Outbox:
    """Replies and worker messages held until commit, then sent in order."""

    def __init__(self, socket=None, before_replies=None):
        self.socket = socket
        #: Called after the worker messages and before the replies of a flush (the broker's durability flush).
        self.before_replies = before_replies
        self.frames = []
        self.replies = []
        self.unreachable = []

    def reply(self, identity, request_id, body):
        """Queue a reply to a client request."""
        self.replies.append([identity, p.CLIENT, p.REPLY, request_id, p.pack(body)])

    def to_worker(self, identity, command, body=None):
        """Queue a message to a worker."""
        self.frames.append([identity, p.WORKER, command, p.pack(body or {})])

    def has_replies(self):
        """True when replies to clients are queued."""
        return bool(self.replies)

    def flush(self):
        """Send everything queued, worker messages first, calling ``before_replies()`` before any reply leaves;
        identities that are gone are noted in ``unreachable``."""
        frames, self.frames = self.frames, []
        self._send(frames)
        if self.replies:
            if self.before_replies is not None:
                self.before_replies()
            replies, self.replies = self.replies, []
            self._send(replies)

    def _send(self, frames):
        for message in frames:
            try:
                self.socket.send_multipart(message, zmq.NOBLOCK)
            except zmq.ZMQError as error:
                if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    raise
                self.unreachable.append(message[0])
                log.debug("peer %s is gone; dropped a %s", message[0].hex(), message[2])
