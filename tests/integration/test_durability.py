"""When the broker flushes to stable storage: before every reply that follows a write, and in no other turn.

Real turns of a real broker on a real SQLite file (and PostgreSQL), with the socket replaced
by a recorder, so the order of sends and flushes is seen exactly.
"""
import os
import time

import pytest

from brokerkit import job
from tubeway.broker.reactor import Broker
from tubeway.broker.store import durability
from tubeway.broker.store.models import open_database
from tubeway.core import protocol as p
from tubeway.core.settings import load_settings

REAL_FDATASYNC = os.fdatasync


class Recorder:
    """Stands in for the ROUTER socket and for ``os.fdatasync``: one list of what happened, in order."""

    def __init__(self):
        self.events = []

    def send_multipart(self, frames, flags=0):
        self.events.append(("reply" if frames[1] == p.CLIENT else "worker", frames[2]))

    def fdatasync(self, fd):
        REAL_FDATASYNC(fd)
        self.events.append(("flush", None))

    def take(self):
        events, self.events = self.events, []
        return events


def make_broker(db_url, monkeypatch, **overrides):
    settings = load_settings({"db": db_url, **overrides}, env={})
    db = open_database(settings.database_url, synchronous=settings.sqlite_synchronous)
    broker = Broker(settings, db)
    broker.recover()
    recorder = Recorder()
    broker.outbox.socket = recorder
    monkeypatch.setattr(durability.os, "fdatasync", recorder.fdatasync)
    return broker, recorder


def client_turn(broker, command, body, request=[0]):
    request[0] += 1
    broker.turn([[b"client", p.CLIENT, command, request[0].to_bytes(8, "big"), p.pack(body)]])


def register_worker(broker):
    broker.turn([[b"worker", p.WORKER, p.READY, p.pack({"kinds": ["echo"], "credit": 10, "pid": 1, "host": "t"})]])


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/tubeway.db"


def test_a_reply_after_writes_is_flushed_first_and_jobs_leave_before_the_flush(sqlite_url, monkeypatch):
    broker, recorder = make_broker(sqlite_url, monkeypatch)
    assert broker.store.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: commits write, not sync
    register_worker(broker)
    recorder.take()
    client_turn(broker, p.SUBMIT, {"jobs": [job()]})
    events = recorder.take()
    assert [kind for kind, _ in events] == ["worker", "flush", "reply"]
    assert events[0][1] == p.JOBS


def test_turns_that_reply_to_no_one_do_not_flush_and_the_next_reply_flushes_them(sqlite_url, monkeypatch):
    broker, recorder = make_broker(sqlite_url, monkeypatch)
    client_turn(broker, p.SUBMIT, {"jobs": [job(run_at=time.time() + 0.05)]})
    assert [kind for kind, _ in recorder.take()] == ["flush", "reply"]
    time.sleep(0.06)
    broker.turn([])  # the delayed job comes due and is queued: a write no one is told about
    assert recorder.take() == []
    assert broker.store.db.execute_sql("SELECT state FROM tubeway_job").fetchone()[0] == "queued"
    client_turn(broker, p.HEALTH, {})  # writes nothing itself, but must not answer ahead of the queued write
    assert [kind for kind, _ in recorder.take()] == ["flush", "reply"]
    client_turn(broker, p.HEALTH, {})  # nothing written since the last flush
    assert [kind for kind, _ in recorder.take()] == ["reply"]


def test_other_synchronous_levels_are_used_as_they_are(sqlite_url, monkeypatch):
    broker, recorder = make_broker(sqlite_url, monkeypatch, sqlite_synchronous="NORMAL")
    client_turn(broker, p.SUBMIT, {"jobs": [job()]})
    assert [kind for kind, _ in recorder.take()] == ["reply"]
    assert broker.store.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 1


@pytest.mark.postgres
def test_postgres_turns_commit_and_the_setting_stays_local(postgres_url, monkeypatch):
    broker, recorder = make_broker(postgres_url, monkeypatch)
    client_turn(broker, p.SUBMIT, {"jobs": [job(run_at=time.time() + 0.05)]})
    assert [kind for kind, _ in recorder.take()] == ["reply"]  # PostgreSQL flushes at its own commit
    time.sleep(0.06)
    broker.turn([])
    db = broker.store.db
    assert db.execute_sql("SELECT state FROM tubeway_job").fetchone()[0] == "queued"
    assert db.execute_sql("SHOW synchronous_commit").fetchone()[0] == "on"
    db.close()
