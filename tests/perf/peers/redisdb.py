"""The Redis the Redis peers use: the machine's at 127.0.0.1:6379 on databases of our own, or one we start.

Only the databases the harness owns are ever flushed (``FLUSHDB`` on each). When nothing
answers on 6379, :func:`redis_for` starts a ``redis-server`` on a free loopback port in the
given :class:`~harness.Stack`, so it stops with the stack.
"""
import shutil
import socket

from harness import free_port, poll

DEFAULT_PORT = 6379
#: Our databases: jobs, and Celery's result backend (kept apart so its results can be counted by DBSIZE).
DEFAULT_DB = 11


def command(port, *args, db=None, timeout=2.0):
    """Send one command (after ``SELECT db`` when given); returns its reply (str, int, list or None)."""
    commands = ([("SELECT", str(db))] if db is not None else []) + [args]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(_encode(cmd) for cmd in commands))
        replies = sock.makefile("rb")
        return [_read(replies) for _ in commands][-1]


def _encode(args):
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _read(replies):
    """One RESP reply from a binary file."""
    line = replies.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind == b"-":
        raise RuntimeError(f"redis: {rest}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        return None if int(rest) < 0 else replies.read(int(rest) + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        return [_read(replies) for _ in range(max(int(rest), 0))]
    return rest


def answers(port):
    """True when a Redis answers PING on 127.0.0.1:port."""
    try:
        return command(port, "PING", timeout=0.5) == "PONG"
    except (OSError, RuntimeError, IndexError):
        return False


class Redis:
    """Where the peers find Redis: port, first database number, and a description for the report."""

    def __init__(self, port, db, started):
        self.port, self.db, self.started = port, db, started

    def url(self, offset=0):
        """``redis://127.0.0.1:<port>/<db + offset>``."""
        return f"redis://127.0.0.1:{self.port}/{self.db + offset}"

    def flush(self):
        """Empty our two databases (only those)."""
        for offset in (0, 1):
            command(self.port, "FLUSHDB", db=self.db + offset)

    def version(self):
        """The server's version string."""
        for line in command(self.port, "INFO", "server").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def describe(self):
        """``Redis <version> in memory; <what it keeps on disk>``, for the report."""
        return f"Redis {self.version()} in memory; {self.persistence()}"

    def persistence(self):
        """What the server keeps on disk, from its ``appendonly`` and ``save`` settings, in words."""
        aof = command(self.port, "CONFIG", "GET", "appendonly")[1]
        save = command(self.port, "CONFIG", "GET", "save")[1]
        if aof == "no" and not save:
            return "nothing kept on disk (appendonly=no, no RDB snapshots)"
        fsync = command(self.port, "CONFIG", "GET", "appendfsync")[1]
        return (f"appendonly={aof} (appendfsync={fsync}), RDB snapshots save='{save}': "
                "an acknowledged job is not fsynced before the reply")


def redis_for(stack, db=DEFAULT_DB):
    """Our :class:`Redis`: the machine's when it answers on 6379, else a ``redis-server`` started in ``stack``."""
    if answers(DEFAULT_PORT):
        redis = Redis(DEFAULT_PORT, db, started=False)
    else:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("no Redis answers on 127.0.0.1:6379 and redis-server is not installed")
        port = free_port()
        process = stack.start("redis-server", [server, "--port", str(port), "--bind", "127.0.0.1",
                                               "--save", "", "--appendonly", "no"])
        poll(lambda: answers(port), 10, "redis-server ready", processes=[process])
        redis = Redis(port, db, started=True)
    redis.flush()
    return redis
