"""The hooks a Tubeway plugin may implement (pluggy project name ``tubeway``).

A plugin is a module or object with functions named after these hooks and marked
with :data:`tubeway.hookimpl`. Every hook is documented in ``docs/plugins.md``;
``tests/test_docs.py`` fails when one is not, or has no docstring here.

Hooks that take a job (``tubeway_validate_job``, ``tubeway_run_job``,
``tubeway_wrap_job``, ``tubeway_retry_decision``) are called only on the plugin
that declared the job's kind, plus plugins that declare no kinds at all (policy and
tracing plugins see every job). The other hooks (``tubeway_callback_body`` too) are
called on every plugin.
"""
from typing import NamedTuple

from tubeway import hookspec


class JobKind(NamedTuple):
    """A kind of job a plugin runs: its name, whether worker processes run it, a line of help, its threads.

    ``concurrency`` is how many jobs of this kind one worker process runs at once, on
    threads of the kind's own (jobs waiting on the network need not hold up others);
    None runs them on the process's shared pool of ``worker_threads`` threads.
    """

    name: str
    runs_on_workers: bool = True
    description: str = ""
    concurrency: int | None = None


@hookspec
def tubeway_startup(role, settings):
    """A Tubeway process of ``role`` is starting: open what the plugin needs.

    ``role`` is ``"broker"``, ``"http"`` or ``"worker"``; ``settings`` is the process's
    :class:`~tubeway.core.settings.Settings`. Called in registration order (built-ins
    first); an exception is logged and does not stop the process.
    """


@hookspec
def tubeway_shutdown(role, settings):
    """A Tubeway process of ``role`` is stopping: close what ``tubeway_startup`` opened.

    Called in reverse registration order; an exception is logged and ignored.
    """


@hookspec
def tubeway_job_kinds(settings):
    """The job kinds this plugin runs, as a list of :class:`JobKind`.

    ``settings`` is the :class:`~tubeway.core.settings.Settings` the plugins were
    loaded with (a kind's ``concurrency`` may come from a setting); an implementation
    that needs none may leave it out. Called once when plugins load. A kind declared
    by two plugins stops the process with an error naming both.
    """


@hookspec
def tubeway_validate_job(spec, settings):
    """Check a job before it is accepted; raise :class:`~tubeway.core.errors.ValidationError` to refuse it.

    ``spec`` is the normalized job (``kind``, ``payload``, ``queue``, ...). The return
    value is ignored. Called on the kind's plugin and on plugins declaring no kinds.
    """


@hookspec(firstresult=True)
def tubeway_run_job(job, context):
    """Run one job of this plugin's kinds in a worker process and return its result.

    ``job`` is the job record (``id``, ``kind``, ``payload``, ``attempts``, ...);
    ``context`` is a :class:`~tubeway.workers.executor.JobContext` (``log``,
    ``progress``, ``deadline``, ``cancelled``, ``spawn``, ``await_children``). Raise
    to fail the attempt. Only the plugin that declared ``job["kind"]`` is called, so
    returning None is a result (None) like any other. The result must be
    JSON-serializable.
    """


@hookspec
def tubeway_wrap_job(job, context):
    """Wrap the run of a job (timing, tracing, resources): a ``@hookimpl(wrapper=True)`` generator.

    ``result = yield`` runs the job (raising what it raised); the wrapper must return
    the result (``return result``) or another value to report instead. An exception
    the wrapper itself raises is logged and ignored: it never fails the job.
    """


@hookspec(firstresult=True)
def tubeway_retry_decision(job, error):
    """Decide whether a failed attempt is retried: True, False, or None for the default.

    ``error`` is the exception the attempt raised (a
    :class:`~tubeway.core.errors.JobTimeout` for a timeout). The default retries
    while attempts remain; True cannot add attempts beyond ``max_attempts``.
    """


@hookspec(firstresult=True)
def tubeway_callback_body(job):
    """The JSON a job's ``callback_url`` receives when the job ends, or None for no opinion.

    ``job`` is the ended job's record as the native API shows it (``id``,
    ``namespace``, ``state``, ``result``, ...). Called in the worker process sending
    the callback, on every plugin whatever the job's kind; the first answer that is
    not None is sent. A dialect answers for its own namespace (the built-in
    ``accepted`` plugin gives the Accepted jobs API's shape); the built-in
    ``callback`` plugin's default (``trylast``) is the record itself.
    """


@hookspec(firstresult=True)
def tubeway_push_body(job):
    """The JSON a ``push`` job's queue endpoint receives, or None for no opinion.

    ``job`` is the job's record as the native API shows it, plus ``lock``: the token of
    the attempt (the endpoint sends it back to write progress and log lines). Called in
    the worker process, on every plugin; the first answer that is not None is sent. A
    dialect answers for its own namespace (the BullMQ proxy API's ``{"job": JobJson,
    "token": ...}``); the built-in ``push`` plugin's default (``trylast``) is
    ``{"job": record, "token": lock}``.
    """


@hookspec
def tubeway_http_routes(settings):
    """Extra HTTP routes for the front end: a list of Tornado rules ``(pattern, handler[, kwargs])``.

    Routes from every plugin are added after Tubeway's own, so they cannot replace them.
    """


@hookspec(firstresult=True)
def tubeway_authenticate(handler, settings):
    """Decide whether an HTTP request may proceed: True (allow), False (refuse with 401) or None (no opinion).

    ``handler`` is the Tornado ``RequestHandler`` about to serve the request. The first
    plugin answering True or False decides; when every plugin answers None the
    ``auth_tokens`` setting decides.
    """
