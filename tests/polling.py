"""Waiting in tests without sleep-and-hope: poll a condition until a deadline."""
import time


def poll_until(predicate, timeout=15.0, interval=0.02, what="condition"):
    """Call ``predicate`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(interval)
