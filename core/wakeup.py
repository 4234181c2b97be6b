"""A self-pipe that wakes a polling loop from other threads (or a signal handler).

Another thread calls :meth:`WakeupPipe.poke`; the loop polls :attr:`WakeupPipe.read_fd`
beside its sockets and calls :meth:`WakeupPipe.drain` before looking at what woke it.
Both ends are non-blocking: a full pipe means the loop is due to wake anyway.
"""
import os


class WakeupPipe:
    """The two ends of a non-blocking pipe: poke from anywhere, poll and drain on the loop."""

    def __init__(self):
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)

    def poke(self):
        """Wake the loop; safe in a signal handler."""
        try:
            os.write(self._write_fd, b"!")
        except OSError:
            pass  # the pipe is full: the loop is due to wake anyway

    def drain(self):
        """Empty the pipe (loop side)."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self):
        """Close both ends."""
        os.close(self.read_fd)
        os.close(self._write_fd)
