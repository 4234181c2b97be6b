"""Job records and the rows storage holds them in: columns, JSON encoding, a new job's record.

A *record* is the native job dict the broker passes around (JSON columns decoded,
``lifo`` derived from ``rank``); a *row* is what the ``tubeway_job`` table holds.
"""
import operator

import orjson

from tubeway.broker.store.models import Job

TABLE = Job._meta.table_name
COLUMNS = tuple(Job._meta.sorted_field_names)
#: Columns holding JSON text.
JSON_COLUMNS = ("payload", "backoff", "labels", "result", "progress", "logs", "annotations")
PAYLOAD_COLUMN, LABELS_COLUMN = COLUMNS.index("payload"), COLUMNS.index("labels")
_COLUMN_VALUES = operator.itemgetter(*COLUMNS)
_JSON_INDEXES = tuple(COLUMNS.index(column) for column in JSON_COLUMNS)
#: A new job's record before its spec, id and times are laid over it.
NEW_RECORD = {**dict.fromkeys(COLUMNS), "attempts": 0, "lifo": False}


def dumps(value):
    """A value as JSON text for a column (None stays NULL)."""
    return None if value is None else orjson.dumps(value).decode()


def loads(text):
    """A JSON column's value (NULL is None)."""
    return None if text is None else orjson.loads(text)


def to_record(row):
    """A row (dict of columns) as the native job record."""
    record = dict(row)
    for column in JSON_COLUMNS:
        record[column] = loads(record[column])
    record["labels"] = record["labels"] or {}
    record["annotations"] = record["annotations"] or {}
    record["lifo"] = (record["rank"] or 0) < 0
    record["logs"] = record["logs"] or []
    record.pop("deadline", None)
    return record


def new_record(spec, now, job_id):
    """The record of a job about to be stored from a normalized spec (its ``seq``, ``rank`` and ``sequence``
    are the store's to give)."""
    record = {**NEW_RECORD, **spec}  # a normalized spec's keys are all record keys
    record.update(id=job_id, state="queued" if spec["run_at"] is None else "delayed", logs=[], created_at=now,
                  updated_at=now, origin=spec.get("origin"), annotations=spec.get("annotations") or {},
                  lifo=bool(spec.get("lifo")))
    return record


def row_of(record):
    """A record as the values of an INSERT of every column (in :data:`COLUMNS` order), JSON encoded."""
    row = list(_COLUMN_VALUES(record))
    for index in _JSON_INDEXES:
        value = row[index]
        if value is not None:
            row[index] = orjson.dumps(value).decode()
    return row
