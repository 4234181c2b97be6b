"""Messages the broker sends once the turn's transaction has committed."""
import logging

import zmq

from tubeway.core import protocol as p

log = logging.getLogger(__name__)


class Outbox:
    """Replies and worker messages held until commit, then sent in order."""

    def __init__(self, socket=None):
        self.socket = socket
        self.frames = []
        self.unreachable = []

    def reply(self, identity, request_id, body):
        """Queue a reply to a client request."""
        self.frames.append([identity, p.CLIENT, p.REPLY, request_id, p.pack(body)])

    def to_worker(self, identity, command, body=None):
        """Queue a message to a worker."""
        self.frames.append([identity, p.WORKER, command, p.pack(body or {})])

    def flush(self):
        """Send everything queued; identities that are gone are noted in ``unreachable``."""
        frames, self.frames = self.frames, []
        for message in frames:
            try:
                self.socket.send_multipart(message, zmq.NOBLOCK)
            except zmq.ZMQError as error:
                if error.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                    raise
                self.unreachable.append(message[0])
                log.debug("peer %s is gone; dropped a %s", message[0].hex(), message[2])
