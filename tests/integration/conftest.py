"""Storage fixtures: a real SQLite file and a real PostgreSQL schema (see ``postgres_url``)."""
import pytest

from tubeway.broker.store.models import database, open_database


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
