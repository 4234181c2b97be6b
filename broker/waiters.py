"""Parked long-poll requests: clients waiting for a job to end, or for a job to take.

A waiter holds the client's ROUTER identity and request id; the broker replies
when what it waits for happens or when its deadline passes, whichever comes first.
"""
import heapq
import itertools


class Waiter:
    """One parked request."""

    __slots__ = ("identity", "request_id", "deadline", "body", "done")

    def __init__(self, identity, request_id, deadline, body):
        self.identity = identity
        self.request_id = request_id
        self.deadline = deadline
        self.body = body
        self.done = False


class Waiters:
    """Waiters for job results (by job id) and for jobs to take (FIFO), with one deadline heap."""

    def __init__(self):
        self.results = {}
        self.takers = []
        self._deadlines = []
        self._order = itertools.count()

    def _park(self, waiter):
        heapq.heappush(self._deadlines, (waiter.deadline, next(self._order), waiter))
        return waiter

    def wait_result(self, job_id, identity, request_id, deadline, body):
        """Park a request until job ``job_id`` ends."""
        waiter = self._park(Waiter(identity, request_id, deadline, body))
        self.results.setdefault(job_id, []).append(waiter)

    def wait_take(self, identity, request_id, deadline, body):
        """Park a take request until a job it may take is queued."""
        self.takers.append(self._park(Waiter(identity, request_id, deadline, body)))

    def ended(self, job_id):
        """The live waiters of a job that just ended (they are removed)."""
        waiters = [w for w in self.results.pop(job_id, ()) if not w.done]
        for waiter in waiters:
            waiter.done = True
        return waiters

    def live_takers(self):
        """Take requests still waiting, oldest first."""
        self.takers = [w for w in self.takers if not w.done]
        return list(self.takers)

    def next_deadline(self):
        """The earliest deadline of a live waiter, or None."""
        while self._deadlines and self._deadlines[0][2].done:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def expired(self, now):
        """Waiters whose deadline passed (marked done): reply to them as things are."""
        expired = []
        while self._deadlines and self._deadlines[0][0] <= now:
            waiter = heapq.heappop(self._deadlines)[2]
            if not waiter.done:
                waiter.done = True
                expired.append(waiter)
                self._prune(waiter.body.get("id"))
        return expired

    def _prune(self, job_id):
        waiters = [w for w in self.results.get(job_id, ()) if not w.done]
        if waiters:
            self.results[job_id] = waiters
        else:
            self.results.pop(job_id, None)
