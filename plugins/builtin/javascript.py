"""Built-in plugin ``javascript``: the job kind ``javascript``, a command run in V8 (ArangoDB tasks' runs).

Payload: ``{"command": "<JavaScript>", "params": <any JSON>}``. ``command`` is the raw
command, not wrapped: a run compiles it as the body of ``function (params)`` and calls that
with ``params`` (undefined when the payload has none), which is what the original's
``(function (params) { <command> } )(params);`` does for any command that is a function body.
(The ArangoDB adapter shows the wrapped form; it stores the raw one.) The value the command
returns, as JSON, is the result (``undefined`` and functions become null); a BigInt or a
cycle in it fails the run. ``print(...)``, ``console.log/info/warn/error/debug(...)`` and
``require('@arangodb').print(...)`` add a line to the job's logs. There is no file, network,
process or module access: ``require`` knows only ``@arangodb``, and there are no timers.

Each run starts from a clean state: the globals earlier runs added are deleted before it, a
run that changed a prototype of the language's classes costs its isolate, and every other
builtin is frozen (see :mod:`tubeway.plugins.builtin.js_runtime` and ``js_sandbox.js``). A run stops
after ``js_time_limit`` seconds (or the job's timeout, if sooner) and when its heap passes
``js_memory_limit`` bytes; the promise jobs it leaves run after it returns (the result is
what it returned), until its time limit at most. Throwing, not compiling or
hitting a limit fails the attempt with the engine's message (:class:`JavaScriptError`,
:class:`JavaScriptLimit`); the worker process goes on. Runs are CPU-bound, so the kind has
threads of its own (``js_concurrency`` per worker process), each with its own isolate.

:func:`check_javascript` compile-checks a command without running it, for front ends that
must answer a syntax error at once. ``tubeway_validate_job`` only checks the payload's shape:
compiling on the front end's event loop would hold up every other request.
"""
from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import js_check, js_engine, js_runtime
from tubeway.plugins.hookspecs import JobKind

KIND = "javascript"
#: Longest command accepted, in characters.
MAX_COMMAND_CHARS = 1024 * 1024
DEFAULT_TIME_LIMIT = 30.0
DEFAULT_MEMORY_LIMIT = 128 * 1024 * 1024
#: ``javascript`` runs one worker process makes at once when the settings do not say (``js_concurrency``).
DEFAULT_CONCURRENCY = 2
#: Seconds a compile check may take.
CHECK_SECONDS = 5.0
PAYLOAD_KEYS = {"command", "params"}


class JavaScriptError(Exception):
    """A command threw or did not compile: the message is the engine's (``"TypeError: x is not a function"``)."""


class JavaScriptLimit(Exception):
    """A run passed ``js_time_limit`` or ``js_memory_limit`` and was stopped."""


def check_javascript(command, settings=None):
    """Compile ``command`` as a function body without running it: None if it compiles, else the engine's message.

    ``"SyntaxError: Unexpected token '}'"``, for example. Blocking but cheap (well under
    a millisecond for a small command, a few ms the first time in a process): call it
    through a thread pool, e.g. ``await IOLoop.current().run_in_executor(None,
    check_javascript, command)``; it is thread-safe. V8 must be started in the process
    (``tubeway_startup`` does it in front ends and workers; elsewhere call
    ``js_engine.start_v8()`` on the main thread first). Bounded by ``js_memory_limit`` and 5 s.
    """
    memory = getattr(settings, "js_memory_limit", None) or DEFAULT_MEMORY_LIMIT
    return js_check.compile_error(command, CHECK_SECONDS, memory)


def validate_payload(payload):
    """Raise ValidationError unless ``payload`` is ``{"command": "<non-empty string>", "params"?: ...}``."""
    if not isinstance(payload, dict):
        raise ValidationError('a javascript job\'s payload must be an object {"command": "...", "params": ...}',
                              "payload")
    unknown = sorted(set(payload) - PAYLOAD_KEYS)
    if unknown:
        raise ValidationError(f"a javascript job's payload takes 'command' and 'params', not '{unknown[0]}'",
                              "payload")
    command = payload.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ValidationError("a javascript job needs a 'command': JavaScript source, a non-empty string", "payload")
    if len(command) > MAX_COMMAND_CHARS:
        raise ValidationError(f"a javascript job's command may have at most {MAX_COMMAND_CHARS} characters",
                              "payload")


def _limits(context):
    settings = context.settings
    seconds = getattr(settings, "js_time_limit", None) or DEFAULT_TIME_LIMIT
    remaining = context.remaining()
    if remaining is not None:
        seconds = max(0.001, min(seconds, remaining))
    return seconds, getattr(settings, "js_memory_limit", None) or DEFAULT_MEMORY_LIMIT


def _stopped(outcome, context, seconds, memory):
    if outcome.stopped == "memory":
        raise JavaScriptLimit(f"the command ran out of memory: its heap passed js_memory_limit ({memory} bytes)")
    context.check()  # a job timeout or a cancellation raises its own error
    raise JavaScriptLimit(f"the command ran past js_time_limit ({seconds:g} s) and was stopped")


def run_javascript(payload, context):
    """Run a ``javascript`` payload within the limits; log what it printed; return its result or raise."""
    seconds, memory = _limits(context)
    params = js_engine.to_json(payload["params"]) if "params" in payload else None
    outcome = js_runtime.run_command(payload["command"], params, seconds, memory, context.cancelled)
    for line in outcome.lines:
        context.log(line)
    if outcome.dropped:
        context.log(f"... {outcome.dropped} more lines dropped")
    if outcome.stopped:
        _stopped(outcome, context, seconds, memory)
    if outcome.failed:
        raise JavaScriptError(outcome.value)
    return outcome.value


@hookimpl
def tubeway_job_kinds(settings):
    """The ``javascript`` kind, on ``js_concurrency`` threads of its own per worker process (runs are CPU-bound)."""
    concurrency = getattr(settings, "js_concurrency", None) or DEFAULT_CONCURRENCY
    return [JobKind(KIND, True, 'Runs payload["command"] in V8 with payload["params"]; the result is what it '
                                "returns, its logs what it prints.", concurrency=concurrency)]


@hookimpl
def tubeway_validate_job(spec):
    """The payload's shape (see :func:`validate_payload`); compiling is left to the run or to ``check_javascript``."""
    validate_payload(spec.get("payload"))


@hookimpl
def tubeway_run_job(job, context):
    """Run the command on this thread's isolate."""
    return run_javascript(job["payload"], context)


@hookimpl
def tubeway_startup(role):
    """Start V8 on the main thread of worker and front-end processes (isolates are made on other threads)."""
    if role in ("worker", "http"):
        js_engine.start_v8()


@hookimpl
def tubeway_shutdown():
    """Free this process's isolates (V8 must not be torn down by the interpreter's exit)."""
    js_runtime.close_all()
