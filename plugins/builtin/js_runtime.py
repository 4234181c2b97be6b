"""Where ``javascript`` commands run and compile: an isolate per job thread, one for compile checks.

Each job thread of a worker process gets its own :class:`~.js_engine.Isolate` the first
time it runs a command (so after the fork), and keeps it: runs on different threads never
wait on each other, and each run has its isolate's heap, and so ``js_memory_limit``, to
itself. A run is two calls: :func:`run_command` calls the sandbox's ``run``, then its
``post``, which comes after the promise jobs the command left (they count toward its time
limit), deletes the globals the run added and reports whether it changed any builtin. An
isolate whose run changed a builtin, or was stopped by a limit, is closed and the thread
makes a fresh one for its next run, so nothing one run defines is seen by the next.

The compile check has an isolate of its own per process, behind a lock. Isolates are
closed at shutdown (and at exit): an interpreter finalizing with one still open can hang.
"""
import atexit
import json
import threading
import time
from typing import NamedTuple

import orjson

from tubeway.plugins.builtin.js_engine import EngineError, Isolate, Stopped
from tubeway.workers.executor import MAX_LOG_LINE, MAX_LOG_LINES

#: Seconds a run's promise jobs get at least, even when the run itself used up its time limit.
POST_GRACE_SECONDS = 0.5
#: Seconds V8 gets to hand over the log lines of a run it stopped.
SALVAGE_SECONDS = 1.0

_local = threading.local()
_registry_lock = threading.Lock()
_isolates = set()
_made = 0
_checker_lock = threading.Lock()
_checker = None


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


def _new_isolate():
    global _made
    isolate = Isolate(MAX_LOG_LINES - 1, MAX_LOG_LINE)
    with _registry_lock:
        _isolates.add(isolate)
        _made += 1
    return isolate


def _retire(isolate):
    with _registry_lock:
        _isolates.discard(isolate)
    if getattr(_local, "isolate", None) is isolate:
        _local.isolate = None
    isolate.close()


def _thread_isolate():
    isolate = getattr(_local, "isolate", None)
    if isolate is None or isolate.closed:
        isolate = _local.isolate = _new_isolate()
    return isolate


def to_json(value):
    """``value`` as JSON text, which is valid JavaScript too (a string becomes a string literal)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, which orjson refuses and JavaScript takes escaped
        return json.dumps(value)


def _loads(text):
    """An answer of the sandbox: JSON in which JavaScript may have left lone surrogates (made U+FFFD here)."""
    if not isinstance(text, str):
        raise EngineError(f"the sandbox answered {type(text).__name__}, not JSON text")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _well_formed(json.loads(text))


def _well_formed(value):
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    return value


def run_command(command, params_json, seconds, memory, cancelled=None):
    """Run ``command`` on this thread's isolate and return its :class:`Outcome`.

    ``params_json`` is the JSON text of ``params`` (None leaves ``params`` undefined);
    ``seconds`` and ``memory`` (bytes) bound the run, promise jobs included;
    ``cancelled`` (a ``threading.Event``) stops it early. Raises EngineError when V8
    fails in a way no command should cause.
    """
    isolate = _thread_isolate()
    code = f"__tubeway.run({to_json(command)}, {'undefined' if params_json is None else to_json(params_json)})"
    with isolate.lock:
        started = time.monotonic()
        try:
            answer = _loads(isolate.eval(code, seconds, memory, cancelled))
            left = max(POST_GRACE_SECONDS, seconds - (time.monotonic() - started))
            clean = isolate.eval("__tubeway.post()", left, memory, cancelled)
        except Stopped as stop:
            lines, dropped = _salvage(isolate)
            _retire(isolate)
            return Outcome(False, None, lines, dropped, stop.reason)
        except EngineError:
            _retire(isolate)
            raise
        if clean != 1:
            _retire(isolate)
    status, value, lines, dropped = answer
    return Outcome(status != 0, value, lines, dropped)


def _salvage(isolate):
    """The lines a stopped run printed, when its isolate can still tell them."""
    # A second try, because the memory monitor may stop V8 once more after the run ended: the
    # first call then takes that stop.
    for _ in range(2):
        if not isolate.responsive:
            break
        try:
            return _loads(isolate.eval("__tubeway.logs()", SALVAGE_SECONDS))
        except (Stopped, EngineError):
            continue
    return [], 0


def compile_error(command, seconds, memory):
    """The SyntaxError compiling ``command`` as a function body gives, or None; it never runs.

    Thread-safe: checks in one process share one isolate, one at a time. Returns a
    message too when compiling passes ``seconds`` or ``memory`` bytes.
    """
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = Isolate(1, 1)
        try:
            return _checker.eval(f"__tubeway.check({to_json(command)})", seconds, memory) or None
        except Stopped as stop:
            checker, _checker = _checker, None
            checker.close()
            if stop.reason == "memory":
                return f"compiling the command needs more than {memory} bytes of memory"
            return f"compiling the command took longer than {seconds:g} s"


def close_all(timeout=5.0):
    """Close every isolate of this process (at shutdown); returns how many were still busy after ``timeout`` s.

    A busy isolate (a run its thread did not stop) is left as it is.
    """
    global _checker
    deadline = time.monotonic() + timeout
    busy = 0
    if _checker_lock.acquire(timeout=timeout):
        try:
            if _checker is not None:
                _checker.close()
                _checker = None
        finally:
            _checker_lock.release()
    else:
        busy += 1
    with _registry_lock:
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
    with _registry_lock:
        return len(_isolates), _made
