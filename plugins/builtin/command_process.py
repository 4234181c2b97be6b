"""Running one shell command for the ``command`` kind: limits, captured output, and its process group's end.

:func:`run` starts ``/bin/sh -c COMMAND`` in a new session (so a new process group whose
id is the shell's pid), with resource limits, stdin from ``/dev/null`` and stdout and
stderr merged into one pipe, reads that pipe line by line on the calling thread while it
waits, and, once the shell has exited or must be stopped, ends the whole group: SIGTERM,
then SIGKILL after a grace. Nothing the command started in its group outlives the run.

Why a ``ulimit`` wrapper for the limits: ``preexec_fn`` is unsafe in a process with
threads (workers have several), and ``resource.prlimit(pid, ...)`` after ``Popen`` races
with the command (it may allocate or write before the limit lands). The wrapper
``/bin/sh -c 'ulimit -v KiB && ulimit -f BLOCKS && exec /bin/sh -c "$1"' sh COMMAND`` sets
the limits in the new process before the command runs, and ``exec`` keeps the pid (so
the group id) and the exit status. ``ulimit -v`` is RLIMIT_AS in KiB and ``ulimit -f``
RLIMIT_FSIZE in 512-byte blocks (POSIX units; dash, bash and busybox agree). The command
itself is passed as an argument, never spliced into the wrapper's text.
"""
import dataclasses
import os
import select
import signal
import subprocess
import time

SHELL = "/bin/sh"
#: Longest line kept from the output, in bytes (a longer one is split).
MAX_LINE_BYTES = 10_000
#: Seconds to drain the pipe after the group is gone (a process outside the group may hold it open).
DRAIN_SECONDS = 1.0
POLL_SECONDS = 0.05
#: Seconds a SIGKILLed group may take to vanish before the run returns anyway.
KILL_SECONDS = 2.0
#: Longest nap between checks for the shell's exit when its pipe is closed and no pidfd tells us.
IDLE_SECONDS = 0.002


@dataclasses.dataclass
class Outcome:
    """How a run ended: ``returncode`` (negative: killed by that signal), and why it was stopped, if it was.

    ``stopped`` is None (the shell exited by itself), ``"cancelled"``, ``"deadline"`` (the
    job's timeout) or ``"time_limit"`` (``command_time_limit``).
    """

    returncode: int
    stopped: str | None = None


class OutputSink:
    """Takes the command's output as lines: rate limit, byte bound, and the notes saying what was dropped.

    ``rate`` is bytes per second (None: unlimited; a bucket holding one second's worth);
    ``max_bytes`` bounds all the output kept. ``emit`` receives each kept line and the notes.
    """

    def __init__(self, emit, rate=None, max_bytes=None, clock=time.monotonic):
        self.emit = emit
        self.rate = rate
        self.max_bytes = max_bytes
        self.clock = clock
        self.tokens = float(rate) if rate is not None else 0.0
        self.last = clock()
        self.kept = 0
        self.rate_dropped = 0  # bytes dropped by the rate limit since the last note
        self.bound_dropped = 0  # bytes dropped past max_bytes (noted once, at the end)

    def line(self, data):
        """One line of output (bytes, without its newline)."""
        size = len(data) + 1
        if self.max_bytes is not None and self.kept + size > self.max_bytes:
            self.bound_dropped += size
            return
        if self.rate is not None:
            now = self.clock()
            self.tokens = min(float(self.rate), self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < size:
                self.rate_dropped += size
                return
            self.tokens -= size
            self._note_rate()
        self.kept += size
        self.emit(data.decode("utf-8", "replace"))

    def _note_rate(self):
        if self.rate_dropped:
            dropped, self.rate_dropped = self.rate_dropped, 0
            self.emit(f"... {dropped} bytes of output dropped: over log_rate_limit_in_bytes_per_second "
                      f"({self.rate})")

    def close(self):
        """Emit the notes still owed (what the rate limit and the byte bound dropped)."""
        self._note_rate()
        if self.bound_dropped:
            self.emit(f"... {self.bound_dropped} bytes of output dropped: over command_log_max_bytes "
                      f"({self.max_bytes})")
            self.bound_dropped = 0


class _Reader:
    """Reads a pipe without blocking for longer than asked, splitting it into lines for a sink."""

    def __init__(self, fd, sink):
        self.fd = fd
        self.sink = sink
        self.buffer = b""
        self.eof = False

    def pump(self, seconds, waker=None):
        """Read what arrives within ``seconds``; returns early at end of file or when ``waker`` (an fd) is readable."""
        fds = ([] if self.eof else [self.fd]) + ([waker] if waker is not None else [])
        if not fds:
            time.sleep(max(0.0, min(seconds, IDLE_SECONDS)))
            return
        ready, _, _ = select.select(fds, [], [], max(0.0, seconds))
        if self.eof or self.fd not in ready:
            return
        data = os.read(self.fd, 65536)
        if not data:
            self.eof = True
            self.flush()
            return
        self.buffer += data
        while True:
            cut = self.buffer.find(b"\n")
            if cut < 0:
                break
            self._line(self.buffer[:cut])
            self.buffer = self.buffer[cut + 1:]
        while len(self.buffer) > MAX_LINE_BYTES:
            self._line(self.buffer[:MAX_LINE_BYTES])
            self.buffer = self.buffer[MAX_LINE_BYTES:]

    def _line(self, data):
        while len(data) > MAX_LINE_BYTES:
            self.sink.line(data[:MAX_LINE_BYTES])
            data = data[MAX_LINE_BYTES:]
        self.sink.line(data.removesuffix(b"\r"))

    def flush(self):
        if self.buffer:
            self._line(self.buffer)
            self.buffer = b""


def wrapper_argv(command, memory_in_mb=None, disk_in_mb=None):
    """The argv running ``command`` under ``/bin/sh -c`` with the limits set first (see the module's doc)."""
    steps = []
    if memory_in_mb is not None:
        steps.append(f"ulimit -v {int(memory_in_mb) * 1024}")
    if disk_in_mb is not None:
        steps.append(f"ulimit -f {int(disk_in_mb) * 2048}")
    if not steps:
        return [SHELL, "-c", command]
    return [SHELL, "-c", " && ".join(steps + [f'exec {SHELL} -c "$1"']), "sh", command]


def group_alive(pgid):
    """True while a process (not a zombie) of the process group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not os.path.isdir("/proc/self"):
        return True
    # Zombies (orphans not yet reaped by init) still answer signal 0: look for a live one.
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exited(proc):
    """True once ``proc`` has exited, without reaping it: its zombie keeps the pid, so the group id, reserved."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _exit_fd(proc):
    """A pidfd of ``proc`` (readable once it exits, so no poll waits past that), or None where there is none."""
    try:
        return os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return None


def end_group(proc, reader, grace):
    """SIGTERM the group of ``proc``, wait up to ``grace`` seconds for it to go, then SIGKILL what is left.

    A leader still running is reaped only at the end, so its group id cannot be reused while
    it is signalled; one that has exited is reaped first (see below).
    """
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    if _exited(proc):
        # Reaped now, the leader no longer answers for the group, so an empty group costs no scan
        # of /proc. Its number stays reserved while any other member (even a zombie) is left.
        proc.wait()
    until = time.monotonic() + grace
    while group_alive(pgid):
        if time.monotonic() >= until:
            _signal_group(pgid, signal.SIGKILL)
            dying = time.monotonic() + KILL_SECONDS  # SIGKILL is not instant: return once the group is gone
            while group_alive(pgid) and time.monotonic() < dying:
                reader.pump(POLL_SECONDS)
            break
        reader.pump(POLL_SECONDS)
    proc.wait()


def run(argv, cwd, env, sink, cancelled, time_limit, deadline=None, grace=10.0):
    """Run ``argv`` (see :func:`wrapper_argv`) to its end, or until ``cancelled``, ``deadline`` or ``time_limit``.

    ``deadline`` is a ``time.monotonic()`` value (the job's timeout), ``time_limit`` seconds
    from now. Output goes to ``sink`` line by line. Returns an :class:`Outcome`; the
    process group is gone (as far as SIGKILL can make it) when this returns.
    """
    limit_at = time.monotonic() + time_limit
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    reader = _Reader(proc.stdout.fileno(), sink)
    exit_fd = _exit_fd(proc)
    stopped = None
    try:
        while not _exited(proc):
            now = time.monotonic()
            if cancelled.is_set():
                stopped = "cancelled"
            elif deadline is not None and now >= deadline:
                stopped = "deadline"
            elif now >= limit_at:
                stopped = "time_limit"
            if stopped:
                break
            reader.pump(POLL_SECONDS, exit_fd)
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
        end_group(proc, reader, grace)
        until = time.monotonic() + DRAIN_SECONDS
        while not reader.eof and time.monotonic() < until:
            reader.pump(min(POLL_SECONDS, until - time.monotonic()))
        reader.flush()
        proc.stdout.close()
        sink.close()
    return Outcome(proc.returncode, stopped)


def exit_message(returncode):
    """``Exited with status N``, or ``Killed by signal SIGKILL`` (the signal's name) for a negative code."""
    if returncode >= 0:
        return f"Exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"Killed by signal {-returncode}"
    return f"Killed by signal {name}"
