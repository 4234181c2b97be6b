"""Logging for every Tubeway process: one format naming the time, role and pid.

A role calls :func:`setup_logging` once at start, then :func:`startup_facts` to log
one line per fact worth knowing when reading logs later (endpoints bound, storage
used, plugins loaded)::

    setup_logging("broker", settings.log_level)
    startup_facts("broker", {"endpoint": settings.broker, "storage": settings.database_url})
"""
import logging
import sys

FORMAT = "%(asctime)s.%(msecs)03d %(role)s[%(process)d] %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

_role = "tubeway"


class _RoleFilter(logging.Filter):
    """Stamps every record with the current role (see :func:`set_role`)."""

    def filter(self, record):
        record.role = _role
        return True


def set_role(role):
    """Change the role named on log lines (e.g. in a process forked from another role)."""
    global _role
    _role = role


def setup_logging(role, level="INFO", stream=None):
    """Send log records of ``level`` and above to stderr (or ``stream``), naming ``role`` and the pid.

    Calling it again replaces the handler it installed, so it is safe after a fork.
    """
    set_role(role)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_tubeway", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._tubeway = True
    handler.addFilter(_RoleFilter())
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("tornado.access", "peewee", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return logging.getLogger(f"tubeway.{role}")


def get_logger(role):
    """The logger a role's modules log to: ``tubeway.<role>``."""
    return logging.getLogger(f"tubeway.{role}")


def startup_facts(role, facts):
    """Log one INFO line per startup fact, ``<name>: <value>``, in the order given."""
    logger = get_logger(role)
    items = facts.items() if isinstance(facts, dict) else facts
    for name, value in items:
        logger.info("%s: %s", name, value)
