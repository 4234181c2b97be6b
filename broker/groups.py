"""Jobs that wait for their children: counters per parent, written once per turn.

A job that ran with ``await_children(total)`` stays ``running`` (no lease) until
``total`` jobs naming it as ``parent`` have ended. Each child that ends bumps its
parent's counters in memory; :meth:`Groups.flush` writes them as the parent's
``progress`` in the same transaction, so a restart reads back exactly what was
committed. The parent ends ``done`` when every child is done, or ``failed`` as soon
as one child fails for good, or any other job of its spawn tree (its ``origin``)
does; later children still count towards its progress. Children that ended before
the parent began waiting are counted when it begins.
"""
import collections

NEGATIVE_CACHE = 10000


class Group:
    """One waiting parent: its record and its children's counts."""

    __slots__ = ("record", "done", "failed", "total")

    def __init__(self, record, done, failed, total):
        self.record = record
        self.done = done
        self.failed = failed
        self.total = total

    @property
    def progress(self):
        """The parent's progress as stored and shown."""
        return {"done": self.done, "failed": self.failed, "total": self.total}


class Groups:
    """Every parent waiting for children, loaded from storage on first need."""

    def __init__(self, lifecycle):
        self.jobs = lifecycle
        self.active = {}
        self.dirty = set()
        self._not_groups = collections.OrderedDict()  # parent ids known not to wait

    def start(self, record, total, result=None, logs=None):
        """A job finished running and now waits for ``total`` children (those already ended count at once)."""
        done, failed = self.jobs.store.ended_children(record["id"])
        group = Group(record, done, failed, total)
        columns = {"result": result, "worker": None, "lease_until": None, "progress": group.progress,
                   "updated_at": self.jobs.clock()}
        if logs:
            columns["logs"] = (record.get("logs") or []) + list(logs)
        self.jobs.release(record["id"])
        self.jobs.store.update(record["seq"], **columns)
        record.update(columns)
        self._not_groups.pop(record["id"], None)
        self.active[record["id"]] = group
        self._settle(group)

    def child_ended(self, child):
        """A job with a ``parent`` ended: count it."""
        group = self._group(child["parent"])
        if group is None:
            return
        if child["state"] == "done":
            group.done += 1
        else:
            group.failed += 1
        self.dirty.add(child["parent"])
        self._settle(group)

    def spawned_failed(self, job):
        """A job of a waiting parent's spawn tree that is not one of its children failed for good.

        Such a job (a fraction's split step, say) was to make children the parent
        waits for; without it they never come, so the parent fails now.
        """
        group = self._group(job["origin"])
        if group is not None and not self.jobs.is_ended(group.record):
            error = f"job {job['id']} it spawned failed: {job.get('error') or 'failed'}"
            self.jobs.finish(group.record, "failed", result=group.record.get("result"), error=error,
                             progress=group.progress)

    def cancelled(self, job_id):
        """A waiting parent was cancelled: its counters stay as they are, its children no longer count."""
        group = self.active.pop(job_id, None)
        if group is not None and job_id in self.dirty:
            self.jobs.store.update(group.record["seq"], progress=group.progress)
        self.dirty.discard(job_id)
        self._not_group(job_id)

    def forget(self, job_id):
        """A parent was deleted: its children no longer count anywhere."""
        self.active.pop(job_id, None)
        self.dirty.discard(job_id)
        self._not_group(job_id)

    def flush(self):
        """Write the counters that changed (before the turn commits)."""
        for job_id in self.dirty:
            group = self.active.get(job_id)
            if group is not None:
                self.jobs.store.update(group.record["seq"], progress=group.progress, updated_at=self.jobs.clock())
                group.record["progress"] = group.progress
        self.dirty.clear()
        for job_id in [i for i, g in self.active.items() if g.done + g.failed >= g.total]:
            del self.active[job_id]

    def _not_group(self, job_id):
        self._not_groups[job_id] = True
        if len(self._not_groups) > NEGATIVE_CACHE:
            self._not_groups.popitem(last=False)

    def _settle(self, group):
        record = group.record
        if self.jobs.is_ended(record):
            return
        if group.failed:
            error = f"{group.failed} of {group.total} child jobs failed"
            self.jobs.finish(record, "failed", result=record.get("result"), error=error, progress=group.progress)
        elif group.done >= group.total:
            self.jobs.finish(record, "done", result=record.get("result"), progress=group.progress)

    def _group(self, parent_id):
        group = self.active.get(parent_id)
        if group is not None or parent_id in self._not_groups:
            return group
        record = self.jobs.store.get(parent_id)
        progress = (record or {}).get("progress")
        if not isinstance(progress, dict) or "total" not in progress or record["state"] == "cancelled":
            self._not_group(parent_id)
            return None
        group = Group(record, progress.get("done", 0), progress.get("failed", 0), progress["total"])
        self.active[parent_id] = group
        return group
