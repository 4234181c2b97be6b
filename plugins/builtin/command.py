"""Built-in plugin ``command``: the job kind ``command``, a shell command in a subprocess (Cloud Foundry tasks).

Off unless the operator enables it (setting ``enable_commands``, flag ``--enable-commands``):
the kind is always declared, so that a refusal names the setting, and while it is off
``tubeway_validate_job`` refuses every ``command`` job with :class:`CommandsDisabled` (a
:class:`~tubeway.core.errors.ValidationError` whose ``field`` is ``"enable_commands"``: the
native API answers 400, a Cloud Foundry front end maps it to 403 ``CF-FeatureDisabled``).
A worker whose settings have it off refuses to run one too.

Payload: ``{"command": str, "dir"?: str, "env"?: {str: str}, "memory_in_mb"?: int,
"disk_in_mb"?: int, "log_rate_limit_in_bytes_per_second"?: int, "context"?: {...}}`` (``context``
is the submitter's own JSON object, kept with the job and not read here: a dialect's fields). The command runs as
``/bin/sh -c COMMAND`` in a new process group (:mod:`tubeway.plugins.builtin.command_process`):

* in ``dir`` (relative to ``data_dir``; it must exist), by default ``<data_dir>/commands/<queue>``
  (made on first use; characters other than letters, digits, ``.``, ``_`` and ``-`` in the
  queue name become ``_``);
* with an environment of only the server's ``PATH``, ``HOME`` and ``LANG`` (those set), with
  ``env`` over them: nothing else of the server's environment (tokens, database URLs) leaks in;
* ``memory_in_mb`` becomes RLIMIT_AS, ``disk_in_mb`` RLIMIT_FSIZE (largest file it may
  write); ``log_rate_limit_in_bytes_per_second`` (-1 or absent: unlimited) throttles the
  output, the excess dropped with a line saying how many bytes were;
* stdout and stderr, merged, become the job's logs line by line, at most
  ``command_log_max_bytes`` bytes (and the 1,000 lines a job keeps);
* it is stopped after ``command_time_limit`` seconds, or the job's timeout if sooner, or
  when the job is cancelled. Whenever the shell exits or is stopped, its whole process group
  gets SIGTERM, then SIGKILL after ``command_kill_grace`` seconds: nothing it started in
  its group outlives the job.

Exit 0: the result is ``{"exit_status": 0}``. Otherwise the job fails with error ``Exited
with status N`` (``Killed by signal SIGKILL`` for a signal), and is not retried (Cloud
Foundry does not re-run a task). Commands block, so the kind has ``command_concurrency``
threads of its own in each worker process.
"""
import os
import re

from tubeway import hookimpl
from tubeway.core.errors import ValidationError
from tubeway.plugins.builtin import command_process
from tubeway.plugins.hookspecs import JobKind
from tubeway.workers.executor import JobCancelled, PlainError

KIND = "command"
PAYLOAD_KEYS = {"command", "dir", "env", "memory_in_mb", "disk_in_mb", "log_rate_limit_in_bytes_per_second",
                "context"}
#: Longest command, in bytes of UTF-8 (Linux takes at most 128 KiB in one argument).
MAX_COMMAND_BYTES = 100_000
#: Most variables in ``env``, and the most bytes of all of them.
MAX_ENV_VARS = 1000
MAX_ENV_BYTES = 100_000
MAX_DIR_CHARS = 4096
#: Largest ``memory_in_mb`` and ``disk_in_mb`` (1 TiB).
MAX_MB = 1024 * 1024
MAX_LOG_RATE = 2 ** 40
#: Variables of the server's environment a command sees (unless ``env`` overrides them).
INHERITED_ENV = ("PATH", "HOME", "LANG")
DEFAULT_TIME_LIMIT = 3600.0
DEFAULT_KILL_GRACE = 10.0
DEFAULT_LOG_MAX_BYTES = 1024 * 1024
DEFAULT_CONCURRENCY = 4
DIR_NAME = "commands"


class CommandsDisabled(ValidationError):
    """A ``command`` job while ``enable_commands`` is off (``field`` is ``"enable_commands"``)."""

    def __init__(self):
        super().__init__("command jobs are disabled: the operator must enable them with the setting "
                         "'enable_commands' (--enable-commands, TUBEWAY_ENABLE_COMMANDS=true)", "enable_commands")


class CommandFailed(PlainError):
    """A command exited with a status other than 0, was killed, or could not run: the message is the job's error."""


def _refuse(message):
    raise ValidationError(f"a command job's {message}", "payload")


def _int(payload, key, minimum, maximum, also=()):
    value = payload.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not (minimum <= value <= maximum or value in also):
        allowed = f"{minimum}..{maximum}" + "".join(f" or {extra}" for extra in also)
        _refuse(f"'{key}' must be an integer in {allowed}")


def validate_payload(payload):
    """Raise ValidationError unless ``payload`` is a well-formed ``command`` payload (see the module's doc)."""
    if not isinstance(payload, dict):
        raise ValidationError('a command job\'s payload must be an object {"command": "...", ...}', "payload")
    unknown = sorted(set(payload) - PAYLOAD_KEYS)
    if unknown:
        _refuse(f"payload takes {', '.join(sorted(PAYLOAD_KEYS))}, not '{unknown[0]}'")
    command = payload.get("command")
    if not isinstance(command, str) or not command.strip():
        _refuse("'command' must be a non-empty string")
    if "\0" in command or len(command.encode("utf-8", "surrogatepass")) > MAX_COMMAND_BYTES:
        _refuse(f"'command' may not hold a NUL character or more than {MAX_COMMAND_BYTES} bytes")
    directory = payload.get("dir")
    if directory is not None and (not isinstance(directory, str) or not directory or "\0" in directory
                                  or len(directory) > MAX_DIR_CHARS):
        _refuse(f"'dir' must be a non-empty path of at most {MAX_DIR_CHARS} characters")
    _check_env(payload.get("env"))
    if payload.get("context") is not None and not isinstance(payload["context"], dict):
        _refuse("'context' must be an object")
    _int(payload, "memory_in_mb", 1, MAX_MB)
    _int(payload, "disk_in_mb", 1, MAX_MB)
    _int(payload, "log_rate_limit_in_bytes_per_second", 0, MAX_LOG_RATE, also=(-1,))


def _check_env(env):
    if env is None:
        return
    if not isinstance(env, dict):
        _refuse("'env' must be an object of strings")
    if len(env) > MAX_ENV_VARS:
        _refuse(f"'env' may have at most {MAX_ENV_VARS} variables")
    size = 0
    for name, value in env.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            _refuse(f"'env' names must be non-empty strings without '=' or NUL, not {name!r}")
        if not isinstance(value, str) or "\0" in value:
            _refuse(f"'env' value of {name} must be a string without NUL")
        size += len(name) + len(value) + 2
    if size > MAX_ENV_BYTES:
        _refuse(f"'env' may hold at most {MAX_ENV_BYTES} characters")


def _setting(settings, name, default):
    value = getattr(settings, name, None)
    return default if value is None else value


def queue_dir(settings, queue):
    """The default working directory of a queue's commands: ``<data_dir>/commands/<queue>`` (not created)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", queue or "default")
    if name in (".", ".."):
        name = name.replace(".", "_")
    return os.path.join(os.path.abspath(_setting(settings, "data_dir", ".tubeway")), DIR_NAME, name)


def working_dir(payload, settings, queue):
    """The directory a command runs in: ``dir`` (relative to ``data_dir``), else the queue's (made here)."""
    if payload.get("dir"):
        return os.path.join(os.path.abspath(_setting(settings, "data_dir", ".tubeway")), payload["dir"])
    directory = queue_dir(settings, queue)
    os.makedirs(directory, exist_ok=True)
    return directory


def command_env(payload, environ=None):
    """The server's ``PATH``, ``HOME`` and ``LANG`` (those set), with the payload's ``env`` over them."""
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in INHERITED_ENV if name in environ}
    env.update(payload.get("env") or {})
    return env


def run_command(payload, context, queue="default"):
    """Run a ``command`` payload to its end; log its output; return ``{"exit_status": 0}`` or raise."""
    settings = context.settings
    if not getattr(settings, "enable_commands", False):
        raise CommandsDisabled()
    directory = working_dir(payload, settings, queue)
    if not os.path.isdir(directory):
        raise CommandFailed(f"Working directory {payload.get('dir')!r} does not exist")
    rate = payload.get("log_rate_limit_in_bytes_per_second")
    sink = command_process.OutputSink(context.log, None if rate is None or rate < 0 else rate,
                                      _setting(settings, "command_log_max_bytes", DEFAULT_LOG_MAX_BYTES))
    time_limit = _setting(settings, "command_time_limit", DEFAULT_TIME_LIMIT)
    argv = command_process.wrapper_argv(payload["command"], payload.get("memory_in_mb"), payload.get("disk_in_mb"))
    try:
        outcome = command_process.run(argv, directory, command_env(payload), sink, context.cancelled, time_limit,
                                      deadline=context.deadline,
                                      grace=_setting(settings, "command_kill_grace", DEFAULT_KILL_GRACE))
    except OSError as exc:
        raise CommandFailed(f"The command could not start: {exc.strerror or exc}") from None
    if outcome.stopped == "cancelled":
        raise JobCancelled("the job was cancelled")
    if outcome.stopped == "deadline":
        context.check()  # raises JobTimeout
    if outcome.stopped == "time_limit":
        raise CommandFailed(f"Ran past command_time_limit ({time_limit:g} s) and was killed")
    if outcome.returncode != 0:
        raise CommandFailed(command_process.exit_message(outcome.returncode))
    return {"exit_status": 0}


@hookimpl
def tubeway_job_kinds(settings):
    """The ``command`` kind, on ``command_concurrency`` threads of its own per worker process (commands block)."""
    concurrency = _setting(settings, "command_concurrency", DEFAULT_CONCURRENCY)
    return [JobKind(KIND, True, 'Runs payload["command"] with /bin/sh -c in a process group of its own, with '
                                "resource limits; its output is the job's logs (needs enable_commands).",
                    concurrency=concurrency)]


@hookimpl
def tubeway_validate_job(spec, settings):
    """Refuse every ``command`` job while ``enable_commands`` is off; else check the payload's fields."""
    if not getattr(settings, "enable_commands", False):
        raise CommandsDisabled()
    validate_payload(spec.get("payload"))


@hookimpl
def tubeway_run_job(job, context):
    """Run the command on this thread, until it ends or is stopped."""
    return run_command(job["payload"], context, job.get("queue") or "default")


@hookimpl
def tubeway_retry_decision(job):
    """Never retry: a command's side effects may not bear running twice (Cloud Foundry does not re-run a task)."""
    return False
