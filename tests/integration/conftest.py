"""Storage fixtures: a real SQLite file and a real PostgreSQL schema (see ``postgres_url``)."""
import pytest

from tubeway.broker.store.models import database, open_database
from tubeway.core.client import BrokerClient
from brokerkit import BrokerThread


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A database URL for each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tubeway.db"
        return
    yield request.getfixturevalue("postgres_url")
    if not database.is_closed():
        database.close()


@pytest.fixture
def db(db_url):
    """An open database with Tubeway's tables."""
    handle = open_database(db_url)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def running(db_url):
    """A broker thread on a free port, on each backend."""
    broker = BrokerThread(db_url).start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def client(running):
    """A broker client connected to ``running``."""
    with BrokerClient(running.endpoint, timeout=5) as c:
        yield c
