"""The plugin manager: loads plugins, routes jobs to the plugin owning their kind.

:class:`PluginManager` is a typed facade over a ``pluggy.PluginManager``. Built-in
plugins register first, then the setuptools entry points of the group ``tubeway``;
the ``plugins`` setting (``TUBEWAY_PLUGINS``) restricts which load. Hooks taking a
job are called on the plugin that declared the job's kind plus plugins declaring no
kinds; lifecycle and wrapper hooks are isolated, so one plugin's failure there is
logged and never stops the process (dramatiq's middleware contract: start hooks in
registration order, stop hooks in reverse).
"""
import importlib.metadata
import logging

import pluggy

from tubeway import PROJECT_NAME
from tubeway.broker.http import accepted_shape, bullmq_shape
from tubeway.core.errors import ConfigError, TubewayError, UnknownKind
from tubeway.plugins import hookspecs
from tubeway.plugins.builtin import command, external, fraction, http_call, javascript, push, testing
from tubeway.plugins.calls import call, call_order, registration_order, run_wrapped
from tubeway.plugins.hookspecs import JobKind

log = logging.getLogger("tubeway.plugins")

ENTRY_POINT_GROUP = "tubeway"
#: Built-in plugins by name, in registration order.
BUILTINS = (("external", external), ("testing", testing), ("callback", http_call), ("fraction", fraction),
            ("accepted", accepted_shape), ("javascript", javascript),
            ("command", command), ("push", push), ("bullmq", bullmq_shape))
#: Most threads one job kind may ask for in each worker process.
MAX_CONCURRENCY = 1024


class PluginManager:
    """Tubeway's plugins: which are loaded, the job kinds they run, and calls into their hooks."""

    def __init__(self):
        self._pm = pluggy.PluginManager(PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._names = []
        self._kinds = {}
        self._owners = {}
        self._scoped = {}
        #: The settings the plugins were loaded with (``tubeway_job_kinds`` gets them).
        self.settings = None

    @classmethod
    def load(cls, settings, extra=()):
        """Built-ins, then entry points, then ``extra`` ``(name, plugin)`` pairs; checked, ready to use.

        Raises :class:`~tubeway.core.errors.ConfigError` naming the plugin at fault.
        """
        wanted = _wanted(settings)
        manager = cls()
        manager.settings = settings
        for name, module in BUILTINS:
            if wanted is None or name in wanted:
                manager.register(module, name)
        manager._load_entry_points(wanted)
        for name, plugin in extra:
            manager.register(plugin, name)
        missing = sorted(set(wanted or ()) - set(manager._names))
        if missing:
            raise ConfigError(f"setting 'plugins' names '{missing[0]}', but no such plugin is installed",
                              setting="plugins")
        manager.check()
        return manager

    def _load_entry_points(self, wanted):
        names = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in names and (wanted is None or ep.name in wanted):
                names.append(ep.name)
        for name in names:
            if self._pm.has_plugin(name):
                raise ConfigError(f"plugin '{name}' from an entry point clashes with a built-in of that name")
            try:
                loaded = self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            except Exception as exc:
                raise ConfigError(f"plugin '{name}' failed to load: {_describe(exc)}") from exc
            if loaded:
                self._names.append(name)

    def register(self, plugin, name):
        """Add one plugin object or module under ``name``; call :meth:`check` when done adding."""
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            raise ConfigError(f"plugin '{name}' cannot be registered: {_one_line(exc)}") from exc
        self._names.append(name)
        self._scoped.clear()

    def check(self):
        """Check every hook implementation and index the job kinds; raises ConfigError."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise ConfigError(f"plugin '{self._pm.get_name(exc.plugin)}': {exc}") from exc
        for impl in self._pm.hook.tubeway_wrap_job.get_hookimpls():
            if not impl.wrapper:
                raise ConfigError(f"plugin '{impl.plugin_name}': tubeway_wrap_job must be marked "
                                  "@hookimpl(wrapper=True)")
        self._index_kinds()
        for kind in self._kinds.values():
            owner = self._owners[kind.name]
            if kind.runs_on_workers and not self._owner_impls("tubeway_run_job", owner):
                raise ConfigError(f"plugin '{owner}' declares job kind '{kind.name}' but does not "
                                  "implement tubeway_run_job")
        self._scoped.clear()

    def _index_kinds(self):
        kinds, owners = {}, {}
        args = {"settings": self.settings}
        for impl in self._pm.hook.tubeway_job_kinds.get_hookimpls():
            try:
                declared = [_job_kind(item) for item in call(impl, args) or ()]
            except Exception as exc:
                raise ConfigError(f"plugin '{impl.plugin_name}': tubeway_job_kinds failed: {_describe(exc)}") from exc
            for kind in declared:
                if kind.name in owners:
                    raise ConfigError(f"job kind '{kind.name}' is declared by two plugins: "
                                      f"'{owners[kind.name]}' and '{impl.plugin_name}'")
                kinds[kind.name], owners[kind.name] = kind, impl.plugin_name
        self._kinds, self._owners = kinds, owners

    # What is loaded.

    def names(self):
        """Names of the loaded plugins, in registration order."""
        return list(self._names)

    def kinds(self):
        """Every job kind by name: ``{name: JobKind}``."""
        return dict(self._kinds)

    def worker_kinds(self):
        """Names of the kinds worker processes run, sorted."""
        return sorted(name for name, kind in self._kinds.items() if kind.runs_on_workers)

    def kind_concurrency(self):
        """Worker kinds that run on threads of their own: ``{name: threads}`` (the others share a pool)."""
        return {name: kind.concurrency for name, kind in self._kinds.items()
                if kind.runs_on_workers and kind.concurrency is not None}

    def owner(self, kind):
        """Name of the plugin that declared ``kind``, or None."""
        return self._owners.get(kind)

    @property
    def hook(self):
        """pluggy's hook relay, for calls this facade does not cover."""
        return self._pm.hook

    # Hooks about one job.

    def validate_job(self, spec, settings):
        """Let the kind's plugin (and kind-less plugins) refuse a job: raises ValidationError."""
        args = {"spec": spec, "settings": settings}
        for impl in self._job_impls("tubeway_validate_job", spec.get("kind")):
            call(impl, args)

    def run_job(self, job, context):
        """Run a job through its plugin's ``tubeway_run_job``, inside the ``tubeway_wrap_job`` wrappers.

        ``context.plugins`` is set to this manager, so a running job may call other hooks
        (the ``callback`` kind asks ``tubeway_callback_body`` for its body).
        """
        if context is not None:
            context.plugins = self
        kind = job["kind"]
        runners = self._job_impls("tubeway_run_job", kind, owner_only=True)
        if not runners:
            raise TubewayError(f"job kind '{kind}' is not run by worker processes")
        args = {"job": job, "context": context}
        wrappers = self._job_impls("tubeway_wrap_job", kind)
        if not wrappers:
            return call(runners[0], args)
        return run_wrapped(wrappers, args, lambda: call(runners[0], args))

    def callback_body(self, job):
        """What the callback URL of ``job`` (an ended job's record) receives: ``tubeway_callback_body``'s answer."""
        return self._pm.hook.tubeway_callback_body(job=job)

    def push_body(self, job):
        """What a ``push`` job's endpoint receives: ``tubeway_push_body``'s answer."""
        return self._pm.hook.tubeway_push_body(job=job)

    def retry_decision(self, job, error):
        """True/False from the first plugin with an opinion on retrying, else None."""
        args = {"job": job, "error": error}
        try:
            impls = self._job_impls("tubeway_retry_decision", job.get("kind"))
        except UnknownKind:
            return None
        for impl in impls:
            try:
                decision = call(impl, args)
            except Exception:
                log.exception("plugin '%s': tubeway_retry_decision failed; ignored", impl.plugin_name)
                continue
            if decision is not None:
                return bool(decision)
        return None

    def _job_impls(self, hook_name, kind, owner_only=False):
        key = (hook_name, kind, owner_only)
        impls = self._scoped.get(key)
        if impls is None:
            owner = self._owners.get(kind)
            if owner is None:
                raise UnknownKind(f"no installed plugin runs jobs of kind '{kind}'", "kind")
            declaring = set(self._owners.values())
            impls = [impl for impl in call_order(getattr(self._pm.hook, hook_name))
                     if impl.plugin_name == owner or (not owner_only and impl.plugin_name not in declaring)]
            self._scoped[key] = impls
        return impls

    def _owner_impls(self, hook_name, plugin_name):
        return [i for i in getattr(self._pm.hook, hook_name).get_hookimpls() if i.plugin_name == plugin_name]

    # Hooks about the process and the HTTP front end.

    def startup(self, role, settings):
        """Call every ``tubeway_startup`` in registration order; failures are logged."""
        self._each("tubeway_startup", {"role": role, "settings": settings}, reverse=False)

    def shutdown(self, role, settings):
        """Call every ``tubeway_shutdown`` in reverse registration order; failures are logged."""
        self._each("tubeway_shutdown", {"role": role, "settings": settings}, reverse=True)

    def _each(self, hook_name, args, reverse):
        impls = registration_order(getattr(self._pm.hook, hook_name))
        for impl in reversed(impls) if reverse else impls:
            try:
                call(impl, args)
            except Exception:
                log.exception("plugin '%s': %s failed; continuing", impl.plugin_name, hook_name)

    def http_routes(self, settings):
        """Every plugin's extra Tornado rules, in registration order."""
        routes = []
        for rules in reversed(self._pm.hook.tubeway_http_routes(settings=settings)):
            routes.extend(rules or ())
        return routes

    def authenticate(self, handler, settings):
        """True or False from the first plugin that decides, else None."""
        return self._pm.hook.tubeway_authenticate(handler=handler, settings=settings)


def _wanted(settings):
    plugins = getattr(settings, "plugins", None)
    if plugins is None:
        return None
    if isinstance(plugins, str):
        plugins = plugins.split(",")
    return {name.strip() for name in plugins if name.strip()}


def _job_kind(item):
    if isinstance(item, str):
        item = JobKind(item)
    elif not isinstance(item, JobKind):
        item = JobKind(*item)
    if not isinstance(item.name, str) or not item.name:
        raise ValueError(f"a job kind needs a non-empty name, got {item.name!r}")
    concurrency = item.concurrency
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or not 1 <= concurrency <= MAX_CONCURRENCY):
        raise ValueError(f"job kind '{item.name}': concurrency must be None or an integer from 1 to "
                         f"{MAX_CONCURRENCY}, got {concurrency!r}")
    return item


def _describe(exc):
    return f"{type(exc).__name__}: {_one_line(exc)}"


def _one_line(exc):
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
