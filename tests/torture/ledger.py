"""What clients were told: every acknowledged submission, and what the external consumer saw.

Producer threads write an :class:`Ack` for each 2xx answer (the id the client got, or
for Queue task API calls the token the sink will see); submissions that errored or
timed out are only counted, never checked. The Accepted API consumer notes each job
it took and each one it abandoned on purpose, so redeliveries can be told apart.
"""
import collections
import threading
import time
from dataclasses import dataclass, field

DIALECTS = ("native", "accepted", "task", "fraction")


@dataclass
class Ack:
    """One acknowledged submission."""

    dialect: str  # one of DIALECTS
    key: str  # the job id (native, accepted) or the token in the call's JSON (task, fraction)
    sent: dict  # what was submitted: the native spec, the accepted body, the task or fraction body
    at: float = field(default_factory=time.time)  # when the 2xx answer arrived (epoch seconds)


class Ledger:
    """Thread-safe record of acknowledgements and of the consumer's deliveries."""

    def __init__(self):
        self._lock = threading.Lock()
        self._acks = []
        self.unacknowledged = collections.Counter()  # dialect -> submissions that got no 2xx
        self.deliveries = collections.Counter()  # accepted job id -> times want_job handed it out
        self.abandoned = collections.Counter()  # accepted job id -> times the consumer "died" holding it
        self.reported = collections.Counter()  # accepted job id -> PUT done answered 200

    def ack(self, dialect, key, sent):
        """Note an acknowledged submission."""
        with self._lock:
            self._acks.append(Ack(dialect, key, sent))

    def refused(self, dialect):
        """Note a submission that got no 2xx (an error status, a reset, a timeout)."""
        with self._lock:
            self.unacknowledged[dialect] += 1

    def of(self, dialect):
        """The acknowledgements of one dialect, oldest first."""
        with self._lock:
            return [ack for ack in self._acks if ack.dialect == dialect]

    def counts(self):
        """Acknowledged submissions per dialect."""
        with self._lock:
            counts = collections.Counter(ack.dialect for ack in self._acks)
        return {dialect: counts[dialect] for dialect in DIALECTS}

    def note(self, counter, job_id):
        """Count one event for a job in one of the consumer's counters (thread-safe)."""
        with self._lock:
            counter[job_id] += 1
