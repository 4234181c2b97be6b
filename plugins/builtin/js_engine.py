"""One V8 isolate for ``javascript`` jobs, through mini-racer, with a time limit and a memory limit per call.

mini-racer 0.14 gives each ``MiniRacer`` its own isolate, one V8 context in it, and a
thread of its own that runs every task on that isolate in turn. It has no way to make a
second context in an isolate (V8's ShadowRealm needs a host hook it does not set), and an
isolate with the sandbox loaded costs about 15 ms to make, so one is kept per job thread
and each run starts from a clean state that ``js_sandbox.js`` checks (see
:mod:`tubeway.plugins.builtin.js_runtime`).

:meth:`Isolate.eval` and :meth:`Isolate.call` talk to mini-racer's context object directly
(its ``_ctx``: the DLL, the context id and the queue its native thread answers
uncancelable tasks on, which :class:`_Answers` replaces) rather than through
``MiniRacer.eval``: that one hops through an asyncio loop thread and costs about 400 µs
of CPU per call, against 20-30 µs here for a call that does nothing. The queue answers
tasks in the order they were sent, so one isolate must be driven by one thread at a time
(the callers hold a lock or own the isolate). pyproject.toml pins mini-racer below 0.15
for this.

V8 must be started on a process's main thread (:func:`start_v8`): started on another
thread, mini-racer crashes when isolates are made later. Nor does V8 survive a fork: a
process forked after V8 started in it refuses to make isolates (:class:`V8Unavailable`).
"""
import contextlib
import ctypes
import json
import os
import queue
import threading
import time
from importlib import resources

import orjson

#: Seconds between looks at a run's cancellation while it runs.
POLL_SECONDS = 0.1
#: Seconds V8 has to answer once told to stop a run; past them the isolate is given up (and its
#: closing, on a thread of its own, stops whatever it still runs: promise jobs cannot be stopped otherwise).
STOP_WAIT_SECONDS = 0.5
#: Seconds the sandbox has to load in a fresh isolate.
SETUP_SECONDS = 10.0

SANDBOX_JS = resources.files(__package__).joinpath("js_sandbox.js").read_text(encoding="utf-8")

_v8_lock = threading.Lock()
_v8_pid = None


class V8Unavailable(RuntimeError):
    """This process cannot run JavaScript: V8 was started before it forked, or is not started on its main thread."""


class Stopped(Exception):
    """A call was stopped before it ended: ``reason`` is ``"time"``, ``"memory"`` or ``"cancelled"``."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class EngineError(Exception):
    """V8 refused a call (the message is the engine's): a bug in the sandbox, or an isolate in a bad state."""


def start_v8():
    """Start V8 in this process, on its main thread (once; later calls do nothing, on any thread).

    Raises V8Unavailable in a process forked after V8 started, or when called first on
    another thread: mini-racer's isolates crash later in a process whose V8 was started
    off the main thread.
    """
    global _v8_pid
    with _v8_lock:
        if _v8_pid is None:
            if threading.current_thread() is not threading.main_thread():
                raise V8Unavailable("V8 must be started on the process's main thread first "
                                    "(the javascript plugin's tubeway_startup does it)")
            from py_mini_racer import init_mini_racer

            init_mini_racer(ignore_duplicate_init=True)
            _v8_pid = os.getpid()
        elif _v8_pid != os.getpid():
            raise V8Unavailable(f"V8 was started in process {_v8_pid} before this process forked from it; "
                                "a forked process cannot run JavaScript")


def to_json(value):
    """``value`` as JSON text, which is valid JavaScript too (a string becomes a string literal)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, which orjson refuses and JavaScript takes escaped
        return json.dumps(value)


def from_json(text):
    """JSON text the sandbox answered, in which JavaScript may have left lone surrogates (made U+FFFD here)."""
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


class _Answers:
    """The queue mini-racer's callback puts answers in, on the isolate's own thread, keeping a thread state there.

    For each callback from a thread Python did not start, ctypes makes a Python thread
    state and deletes it after, mapping and unmapping its frame stack: 20-40 µs of CPU
    per call. The first answer keeps one for the isolate's thread (a ``PyGILState_Ensure``
    not released); after :meth:`release`, the next answer gives it back.
    """

    def __init__(self):
        self._queue = queue.SimpleQueue()  # in C: a waiting thread gets its answer a few µs sooner than from a Queue
        self.get = self._queue.get
        self._lock = threading.Lock()
        self._state = "new"

    def put(self, answer):
        """An answer (called on the isolate's thread, holding the GIL)."""
        with self._lock:
            if self._state == "new":
                ctypes.pythonapi.PyGILState_Ensure()
                self._state = "held"
            elif self._state == "releasing":
                ctypes.pythonapi.PyGILState_Release(0)  # PyGILState_LOCKED: what the Ensure above returned
                self._state = "released"
        self._queue.put(answer)

    def release(self):
        """Have the next answer give the thread state back (before the isolate's last call)."""
        with self._lock:
            self._state = "releasing" if self._state == "held" else "released"


class Isolate:
    """A V8 isolate with the sandbox loaded: :meth:`eval` with limits, :meth:`close` when done.

    ``lock`` is for callers sharing it between threads. ``broken`` is set once a call was
    stopped: the isolate should then be closed and replaced (it may hold a run's garbage
    or a pending termination); ``responsive`` is cleared when V8 did not even answer the
    stop, and the isolate must not be called again. ``quiet_by`` and ``memory`` are the
    owner's: when the last run's promise jobs must be done (``time.monotonic()``), and
    the heap limit they run under.
    """

    def __init__(self, max_lines, max_line_chars):
        start_v8()
        from py_mini_racer import MiniRacer

        self._racer = MiniRacer()
        ctx = self._racer._ctx
        self._dll, self._id = ctx._dll, ctx._ctx
        self._answers = _Answers()
        object.__setattr__(ctx, "_non_cancelable_mr_task_results_queue", self._answers)
        self._to_handle, self._to_python = ctx._python_to_value_handle, ctx._value_handle_to_python
        self.lock = threading.Lock()
        self.broken = False
        self.responsive = True
        self.quiet_by = None
        self.memory = 0
        self.eval(f"({SANDBOX_JS})({int(max_lines)}, {int(max_line_chars)})", SETUP_SECONDS)
        self._no_args = self.eval("[]", SETUP_SECONDS)
        self._functions = {}

    def eval(self, code, seconds, memory=0, cancelled=None):
        """Evaluate ``code`` and return its value (a JS string comes back as ``str``).

        Stops it and raises :class:`Stopped` after ``seconds``, when its heap passes
        ``memory`` bytes (0: no limit), or once ``cancelled`` (a ``threading.Event``)
        is set. Raises :class:`EngineError` when the code throws or the isolate is closed.
        """
        if self._racer is None:
            raise EngineError("the isolate is closed")
        self._racer.set_hard_memory_limit(int(memory))
        code_handle = self._to_handle(code)
        return self._answer(self._dll.mr_eval(self._id, code_handle.raw, 0), seconds, cancelled)

    def call(self, name, text, seconds, memory=0, cancelled=None):
        """Call the sandbox's ``__tubeway[name]`` with ``this`` the string ``text``; limits and errors as :meth:`eval`.

        Cheaper than evaluating a call: V8 compiles no script for it (a script new to V8
        costs it tens of µs), and the function is looked up once per isolate.
        """
        if self._racer is None:
            raise EngineError("the isolate is closed")
        function = self._functions.get(name)
        if function is None:
            function = self._functions[name] = self.eval(f"__tubeway.{name}", SETUP_SECONDS)
        self._racer.set_hard_memory_limit(int(memory))
        this = self._to_handle(text)
        task = self._dll.mr_call_function(self._id, function.raw_handle.raw, this.raw, self._no_args.raw_handle.raw, 0)
        return self._answer(task, seconds, cancelled)

    def _answer(self, task, seconds, cancelled):
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            try:
                answer = self._answers.get(timeout=max(0.0, min(POLL_SECONDS, left)))
                break
            except queue.Empty:
                if cancelled is not None and cancelled.is_set():
                    self._stop(task, "cancelled")
                if left <= 0:
                    self._stop(task, "time")
        return self._python(answer)

    def _python(self, answer):
        from py_mini_racer import JSEvalException, JSOOMException

        try:
            return self._to_python(answer)
        except JSOOMException:
            self.broken = True
            raise Stopped("memory") from None
        except JSEvalException as exc:
            self.broken = True
            if self.memory_exhausted():  # a call (not an eval) the heap limit stopped answers a bare "null"
                raise Stopped("memory") from None
            raise EngineError(str(exc).strip()) from None

    def _stop(self, task, reason):
        self.broken = True
        self._dll.mr_cancel_task(self._id, task)
        try:
            self._answers.get(timeout=STOP_WAIT_SECONDS)  # the task's answer, so the queue stays in step
        except queue.Empty:
            self.responsive = False
        raise Stopped(reason)

    def memory_exhausted(self):
        """True when V8 stopped something for the heap limit since the last call set it (promise jobs, say)."""
        return self._racer is not None and self._racer.was_hard_memory_limit_reached()

    @property
    def closed(self):
        """True once :meth:`close` was called."""
        return self._racer is None

    def close(self):
        """Free the isolate (its thread ends). An unresponsive isolate is freed on a thread of its own."""
        if self._racer is None:
            return
        if self.responsive:
            self._answers.release()
            with contextlib.suppress(Stopped, EngineError):
                self.eval("0", STOP_WAIT_SECONDS)  # its answer gives the isolate thread's Python state back
        racer, self._racer = self._racer, None
        self._functions, self._no_args = {}, None  # handles into the isolate, freed before it
        if self.responsive:
            racer.close()
        else:
            threading.Thread(target=racer.close, name="js-isolate-close", daemon=True).start()
