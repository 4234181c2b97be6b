"""Storage fixtures: a real SQLite file and, when reachable, a real PostgreSQL schema."""
import os
import uuid

import pytest

from tubeway.broker.store.models import database, open_database

PG_URL = os.environ.get("TUBEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_schema_url():
    """A URL to a fresh PostgreSQL schema, or skip (fail under CI) when PostgreSQL is absent."""
    try:
        import psycopg2

        conn = psycopg2.connect(PG_URL, connect_timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {error}")
    schema = f"tw_test_{uuid.uuid4().hex[:10]}"
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    return conn, schema, f"{PG_URL}?search_path={schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A database URL for each backend; PostgreSQL schemas are dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tubeway.db"
        return
    conn, schema, url = postgres_schema_url()
    try:
        yield url
    finally:
        if not database.is_closed():
            database.close()
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture
def db(db_url):
    """An open database with Tubeway's tables."""
    handle = open_database(db_url)
    try:
        yield handle
    finally:
        handle.close()
