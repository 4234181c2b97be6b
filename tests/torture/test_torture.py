"""Tubeway's core promise under kill -9: every acknowledged job ends, in every dialect, on SQLite and PostgreSQL.

Producers post over HTTP in every dialect (native, Accepted, Queue task API tasks and
fractions) while external consumers take Accepted jobs (sometimes dying with one) and a
chaos loop kills -9 the broker, one worker process, the front end or all of them at
random moments, restarting each. Then the producers stop, the system settles, and every
acknowledged submission is read back: it must have ended as promised (see ``audit``).

``TORTURE_CYCLES`` (default 5; ``make torture`` runs 100) sets the number of kills,
``TORTURE_SEED`` repeats a run's choices (the seed is printed with the summary line) and
``TORTURE_TARGETS`` (comma-separated, from ``broker,worker,http,all``) narrows what is killed.
"""
import os
import random
import time

import pytest
import requests

from audit import Audit, problem_report, settled
from chaos import Chaos
from consumer import Consumers
from ledger import Ledger
from producers import Producers
from rig import TARGETS, Rig
from sink import Sink
from telling import log_excerpts, summary_line
from twkit import Cluster, poll_until

CYCLES = int(os.environ.get("TORTURE_CYCLES") or 5)
SEED = int(os.environ.get("TORTURE_SEED") or random.SystemRandom().randrange(2**31))
#: What the chaos may kill: ``TORTURE_TARGETS=broker,worker,http,all`` (the default: all four).
KILLED = [t for t in (os.environ.get("TORTURE_TARGETS") or ",".join(TARGETS)).split(",") if t]
#: Acknowledged native jobs before the first kill, so that every kill strikes a loaded system.
WARM_UP = 20
SETTLE_TIMEOUT = 40.0

pytestmark = [pytest.mark.acceptance, pytest.mark.torture]


@pytest.fixture
def rig(xprocess, tmp_path, free_port, backend):
    """The split processes on this run's storage, every one stopped afterwards."""
    rig = Rig(Cluster(xprocess, tmp_path, free_port), backend[1])
    try:
        yield rig
    finally:
        rig.stop()


@pytest.mark.timeout(max(120, 60 + 15 * CYCLES))
def test_every_acknowledged_job_ends_through_kill_9_chaos(rig, backend, summaries):
    print(f"torture: seed {SEED}, backend {backend[0]}, {CYCLES} cycles")
    began = time.monotonic()
    ledger = Ledger()
    chaos = Chaos(rig, random.Random(SEED), CYCLES, KILLED)
    with Sink() as sink:
        rig.start_all()
        settle = _drive(rig, sink, ledger, chaos)
        audit = Audit(rig.url, ledger, sink)
        problems = audit.run()
    summary = summary_line(backend[0], SEED, chaos, ledger, audit, time.monotonic() - began, settle)
    summaries.append(summary)
    print(summary)
    if problems:
        pytest.fail(f"broken promises (seed {SEED}, backend {backend[0]}):\n{problem_report(problems)}\n\n"
                    f"{summary}\n\nchaos:\n{chaos.timeline()}\n\nprocess logs:\n{log_excerpts(rig)}",
                    pytrace=False)


def _drive(rig, sink, ledger, chaos):
    """Load and chaos, then drain; returns how long settling took (or that it did not)."""
    producers = Producers(rig.url, sink.url, ledger, SEED)
    consumers = Consumers(rig.url, ledger, SEED)
    try:
        producers.start()
        consumers.start(reckless=True)
        try:
            poll_until(lambda: ledger.counts()["native"] >= WARM_UP, timeout=30, what="first acknowledgements")
            chaos.run()
        finally:
            producers.stop()
        consumers.calm()
        return _settle(rig, sink, ledger)
    finally:
        producers.stop()
        consumers.stop()


def _settle(rig, sink, ledger):
    """Poll until nothing is left to run; the audit tells what is stuck if that never comes."""
    start = time.monotonic()
    session = requests.Session()
    try:
        poll_until(lambda: settled(session, rig.url, ledger, sink), timeout=SETTLE_TIMEOUT, interval=0.2,
                   what="every job ended")
    except AssertionError:
        return f"NOT within {SETTLE_TIMEOUT:g} s"
    finally:
        session.close()
    return f"{time.monotonic() - start:.1f} s"
