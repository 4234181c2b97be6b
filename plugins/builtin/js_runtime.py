"""Where ``javascript`` commands run: an isolate per job thread, made clean before each run.

Each job thread of a worker process gets its own :class:`~.js_engine.Isolate` the first
time it runs a command (so after the fork) and keeps it: runs on different threads never
wait on each other, and each run has its isolate's heap, so ``js_memory_limit``, to itself.

A run is one call, the sandbox's ``step``: it first checks that the last run (and the
promise jobs it left, which V8 runs right after it) changed nothing it may not, then runs
the command. A run that finds its isolate changed, or held by the last run's promise jobs
past that run's time limit, is made again on a fresh isolate, and so is one that V8 could
not start. An isolate stopped by a limit is closed too. The last run's promise jobs are
given until its time limit: while no run comes, :class:`_Reaper` checks them then.
"""
import atexit
import contextlib
import itertools
import threading
import time
from typing import NamedTuple

from tubeway.plugins.builtin import js_check
from tubeway.plugins.builtin.js_engine import EngineError, Isolate, Stopped, from_json, to_json
from tubeway.workers.executor import MAX_LOG_LINE, MAX_LOG_LINES

#: Seconds V8 gets to hand over the log lines of a run it stopped, or to show that an idle isolate is free.
QUICK_SECONDS = 0.5
#: A run stopped by its time limit after starting this late (a share of the limit) is run again on a fresh
#: isolate: the last run's promise jobs took its time.
LATE_START_SHARE = 0.1

_local = threading.local()
_tokens = itertools.count(1)
_lock = threading.Lock()
_isolates = set()
_made = 0


class Outcome(NamedTuple):
    """How a run ended: ``stopped`` (None, ``"time"``, ``"memory"`` or ``"cancelled"``), else ``failed``.

    ``value`` is the result (JSON-decoded) or, when ``failed``, the engine's message;
    ``lines`` the printed lines (at most ``MAX_LOG_LINES - 1``) and ``dropped`` how many more.
    """

    failed: bool
    value: object
    lines: list
    dropped: int
    stopped: str | None = None


class _Again(Exception):
    """The run did not get a fair go on its isolate: run it again on a fresh one."""


def run_command(command, params_json, seconds, memory, cancelled=None):
    """Run ``command`` on this thread's isolate and return its :class:`Outcome`.

    ``params_json`` is the JSON text of ``params`` (None leaves ``params`` undefined);
    ``seconds`` and ``memory`` (bytes) bound the run; ``cancelled`` (a ``threading.Event``)
    stops it early. Raises EngineError when V8 fails in a way no command should cause.
    """
    token = next(_tokens)
    step_input = to_json([command, params_json, token])
    try:
        return _run(step_input, token, seconds, memory, cancelled)
    except _Again:
        try:
            return _run(step_input, token, seconds, memory, cancelled, last_try=True)
        except _Again:
            raise EngineError("a fresh isolate could not run the command") from None


def _run(step_input, token, seconds, memory, cancelled, last_try=False):
    with _locked_isolate() as isolate:
        isolate.quiet_by = None
        submitted = time.time()
        try:
            answer = from_json(isolate.call("step", step_input, seconds, memory, cancelled))
        except Stopped as stop:
            return _stopped(isolate, stop.reason, token, seconds, submitted, last_try)
        except EngineError:
            _retire(isolate)  # a stop left pending by the last run's promise jobs, say
            if last_try:
                raise
            raise _Again() from None
        if answer == [2]:
            _retire(isolate)
            raise _Again()
        isolate.quiet_by = quiet_by = time.monotonic() + seconds
        isolate.memory = memory
    _reaper.due(quiet_by)
    status, value, lines, dropped = answer
    return Outcome(status != 0, value, lines, dropped)


def _stopped(isolate, reason, token, seconds, submitted, last_try):
    lines, dropped, started_at, started_token = _salvage(isolate)
    _retire(isolate)
    if started_token != token:  # V8 never got to it: the last run's promise jobs held the isolate
        lines, dropped = [], 0
    late = started_token != token or started_at / 1000 - submitted > seconds * LATE_START_SHARE
    if reason == "time" and late and not last_try:
        raise _Again()
    return Outcome(False, None, lines, dropped, reason)


def _salvage(isolate):
    """``(lines, dropped, started_at, token)`` of the last step on a stopped isolate, when it can still tell."""
    # A second try, because the memory monitor may stop V8 once more after the run ended: the
    # first call then takes that stop.
    for _ in range(2):
        if not isolate.responsive:
            break
        try:
            lines, dropped, started_at, token = from_json(isolate.eval("__tubeway.logs()", QUICK_SECONDS))
            return lines, dropped, started_at, token
        except (Stopped, EngineError):
            continue
    return [], 0, None, None


@contextlib.contextmanager
def _locked_isolate():
    """This thread's isolate, locked (one the reaper closed meanwhile is replaced)."""
    while True:
        isolate = _thread_isolate()
        with isolate.lock:
            if not isolate.closed:
                yield isolate
                return


def _thread_isolate():
    isolate = getattr(_local, "isolate", None)
    if isolate is not None and not isolate.closed:
        with isolate.lock:
            if isolate.memory_exhausted():  # the last run's promise jobs ran out of memory
                _retire(isolate)
    if isolate is None or isolate.closed:
        global _made
        isolate = _local.isolate = Isolate(MAX_LOG_LINES - 1, MAX_LOG_LINE)
        with _lock:
            _isolates.add(isolate)
            _made += 1
    return isolate


def _retire(isolate):
    with _lock:
        _isolates.discard(isolate)
    isolate.close()


class _Reaper:
    """A thread that looks at idle isolates once their last run's time limit is up.

    If the run's promise jobs still hold the isolate then, it is closed, which stops them.
    Under load the next run on the thread does this first, and the reaper wakes about once
    per time limit to find nothing to do.
    """

    def __init__(self):
        self._wake = threading.Condition(_lock)
        self._thread = None
        self._generation = 0
        self._next = None

    def due(self, when):
        """A run ended whose promise jobs must be done by ``when`` (``time.monotonic()``)."""
        with _lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, args=(self._generation,), name="js-reaper",
                                                daemon=True)
                self._thread.start()
            if self._next is None or when < self._next:
                self._next = when
                self._wake.notify()

    def stop(self):
        """End the thread (at shutdown; a later run starts a new one)."""
        with _lock:
            self._generation += 1
            self._thread = self._next = None
            self._wake.notify()

    def _loop(self, generation):
        while True:
            with _lock:
                while True:
                    if generation != self._generation:
                        return
                    now = time.monotonic()
                    times = [i.quiet_by for i in _isolates if i.quiet_by is not None]
                    due = [i for i in _isolates if i.quiet_by is not None and i.quiet_by <= now]
                    if due:
                        break
                    self._next = min(times) if times else None
                    self._wake.wait(None if self._next is None else self._next - now)
            for isolate in due:
                _check_idle(isolate)


def _check_idle(isolate):
    if not isolate.lock.acquire(blocking=False):
        return  # a run has it: that run checks it
    try:
        if isolate.quiet_by is None or isolate.closed:
            return
        isolate.quiet_by = None
        try:
            if isolate.memory_exhausted():
                raise Stopped("memory")
            isolate.eval("0", QUICK_SECONDS, isolate.memory)
        except (Stopped, EngineError):
            _retire(isolate)
    finally:
        isolate.lock.release()


_reaper = _Reaper()


def close_all(timeout=5.0):
    """Close every isolate of this process (at shutdown); returns how many were still busy after ``timeout`` s.

    A busy isolate (a run its thread did not stop) is left as it is.
    """
    deadline = time.monotonic() + timeout
    _reaper.stop()
    busy = 0 if js_check.close(timeout) else 1
    with _lock:
        isolates = list(_isolates)
        _isolates.clear()
    for isolate in isolates:
        if isolate.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                isolate.close()
            finally:
                isolate.lock.release()
        else:
            busy += 1
    return busy


atexit.register(close_all)


def isolate_counts():
    """``(held, made)``: isolates this process holds for job threads now, and has made in all."""
    with _lock:
        return len(_isolates), _made
