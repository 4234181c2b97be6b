"""The whole system on PostgreSQL: the same processes, the same API, another database."""
import pytest

from twkit import poll_until

pytestmark = [pytest.mark.acceptance, pytest.mark.postgres]


def test_tubeway_up_on_postgresql_runs_both_apis(cluster, postgres_url):
    cluster.up("--processes", "1", "--db", postgres_url)
    job = cluster.post("/jobs", json={"queue": "pg", "params": 1}).json()
    assert cluster.post("/want_job").json()["id"] == job["id"]
    assert cluster.put(f"/jobs/{job['id']}", json={"status": "done", "result": 2}).json()["result"] == 2
    native = cluster.post("/api/v1/jobs", json={"kind": "echo", "payload": "pg"}).json()["id"]
    done = poll_until(lambda: _done(cluster, native), what="echo job done")
    assert done["result"] == "pg"


def _done(cluster, job_id):
    job = cluster.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] == "done" else None
