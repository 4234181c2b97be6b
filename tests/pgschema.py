"""A fresh PostgreSQL schema for a test, dropped afterwards (skipped without a server, failed under CI)."""
import contextlib
import os
import uuid

import pytest

PG_URL = os.environ.get("TUBEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_schema(prefix="tw_test"):
    """Yield a URL to a new schema; skips when PostgreSQL is unreachable, but fails when ``CI`` is set."""
    try:
        import psycopg2

        conn = psycopg2.connect(PG_URL, connect_timeout=3)
    except Exception as error:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {error}")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_URL}?search_path={schema}"
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()
