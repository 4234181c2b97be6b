"""Compile checks of ``javascript`` commands: one isolate per process, one check at a time.

A check compiles the command as the body of ``function (params)`` (as a run does) with
the ``Function`` constructor, which parses but never runs it. The isolate is made on the
first check, so in the process that checks (after any fork).
"""
import threading

from tubeway.plugins.builtin.js_engine import Isolate, Stopped, to_json

_lock = threading.Lock()
_isolate = None


def compile_error(command, seconds, memory):
    """The SyntaxError compiling ``command`` gives (``"SyntaxError: ..."``), or None; the command never runs.

    Thread-safe: checks share the process's isolate, one at a time. Returns a message
    too when compiling takes more than ``seconds`` or ``memory`` bytes of heap.
    """
    global _isolate
    with _lock:
        if _isolate is None:
            _isolate = Isolate(1, 1)
        try:
            return _isolate.eval(f"__tubeway.check({to_json(command)})", seconds, memory) or None
        except Stopped as stop:
            isolate, _isolate = _isolate, None
            isolate.close()
            if stop.reason == "memory":
                return f"compiling the command needs more than {memory} bytes of memory"
            return f"compiling the command took longer than {seconds:g} s"


def close(timeout):
    """Close the process's check isolate; False when a check still held it after ``timeout`` seconds."""
    global _isolate
    if not _lock.acquire(timeout=timeout):
        return False
    try:
        if _isolate is not None:
            _isolate.close()
            _isolate = None
    finally:
        _lock.release()
    return True
