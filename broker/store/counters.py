"""Named counters in storage: generated numeric ids and sequence numbers, never reused.

Each counter is a row (name, last value) the broker increments inside its
transaction, so a value handed out is committed with whatever used it and survives
a restart; nothing hands it out twice.
"""
from tubeway.broker.store.models import Counter


def next_value(name):
    """Increment the counter ``name`` (created at 0) and return its new value."""
    updated = Counter.update(value=Counter.value + 1).where(Counter.name == name).execute()
    if not updated:
        Counter.insert(name=name, value=1).execute()
    return Counter.select(Counter.value).where(Counter.name == name).scalar()


def current_value(name):
    """The last value the counter ``name`` handed out (0 when it never did)."""
    return Counter.select(Counter.value).where(Counter.name == name).scalar() or 0
