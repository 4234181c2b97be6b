"""One SQL query per list: a :class:`~tubeway.broker.job_filters.JobFilter` as a Peewee query.

Multi-value filters become ``IN``, label requirements ``EXISTS`` probes of the label
table's primary key (``job, key``) for each candidate job, time ranges ``OR``-ed comparisons; the order is
creation (``seq``, which is also the primary key) or ``updated_at``, ``seq`` breaking ties.
A total is ``COUNT`` of the same query without order or limit. Nothing is filtered in Python.
"""
import functools
import operator

import peewee as pw

from tubeway.broker.store.models import Job, JobLabel

_COMPARE = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}


def _labelled(key, values=None):
    """EXISTS a label ``key`` (with one of ``values``, when given) of the job at hand: one primary-key probe."""
    query = JobLabel.select(JobLabel.job).where((JobLabel.job == Job.seq) & (JobLabel.key == key))
    if values is not None:
        query = query.where(JobLabel.value.in_(values) if len(values) > 1 else JobLabel.value == values[0])
    return pw.fn.EXISTS(query)


def _requirement(requirement):
    key, op, values = requirement["key"], requirement["op"], requirement["values"]
    if op in ("=", "in"):
        return _labelled(key, values)
    if op in ("!=", "notin"):
        return ~_labelled(key, values)
    if op == "exists":
        return _labelled(key)
    return ~_labelled(key)


def _in_range(column, ranges):
    def one(bounds):
        return functools.reduce(operator.and_, (_COMPARE[op](column, value) for op, value in bounds.items()))
    return functools.reduce(operator.or_, (one(bounds) for bounds in ranges))


def conditions(query_filter, now=None):
    """The WHERE conditions of a filter (unexpired jobs only when ``now`` is given)."""
    found = []
    for column, values in query_filter.equal.items():
        field = getattr(Job, column)
        found.append(field == values[0] if len(values) == 1 else field.in_(values))
    for key, value in query_filter.labels.items():
        found.append(_labelled(key, [value]))
    found.extend(_requirement(requirement) for requirement in query_filter.selector)
    for column, ranges in query_filter.ranges.items():
        found.append(_in_range(getattr(Job, column), ranges))
    if now is not None:
        found.append(Job.expires_at.is_null() | (Job.expires_at > now))
    return found


def _order(order):
    return {"created": (Job.seq,), "-created": (Job.seq.desc(),),
            "updated": (Job.updated_at, Job.seq), "-updated": (Job.updated_at.desc(), Job.seq.desc()),
            "dispatch": (Job.priority, Job.rank)}[order]


def select_page(query_filter, now=None):
    """The query for one page of rows (as dicts), in the filter's order, after its cursor or offset."""
    where = conditions(query_filter, now)
    if query_filter.after:
        where.append(Job.seq > query_filter.after)
    query = Job.select()
    if where:
        query = query.where(*where)
    query = query.order_by(*_order(query_filter.order)).limit(query_filter.limit)
    if query_filter.offset:
        query = query.offset(query_filter.offset)
    return query.dicts()


def count(query_filter, now=None):
    """How many jobs match a filter (cursor and offset aside)."""
    where = conditions(query_filter, now)
    query = Job.select(pw.fn.COUNT(Job.seq))
    if where:
        query = query.where(*where)
    return query.scalar()

