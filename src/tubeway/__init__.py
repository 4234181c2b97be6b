"""Tubeway: a durable job and task server speaking five HTTP dialects.

Plugins mark their hook implementations with :data:`hookimpl`::

    from tubeway import hookimpl

    @hookimpl
    def tubeway_job_kinds():
        ...
"""
import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "tubeway"

#: Marker for plugin hook implementations.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: Marker for hook specifications (used by :mod:`tubeway.plugins.hookspecs`).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
