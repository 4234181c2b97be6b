"""The native API against real processes: every kind of the built-in plugins, lists, metrics."""
import pytest

from twkit import poll_until

pytestmark = pytest.mark.acceptance


def submit(server, body):
    response = server.post("/api/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def record(server, job_id):
    response = server.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def ended(server, job_id):
    job = record(server, job_id)
    return job if job["state"] in ("done", "failed", "cancelled") else None


def test_an_echo_job_runs_on_a_worker_and_keeps_its_result(server):
    job_id = submit(server, {"kind": "echo", "payload": {"hello": [1, 2]}, "labels": {"team": "a"}})["id"]
    job = poll_until(lambda: ended(server, job_id))
    assert job["state"] == "done" and job["result"] == {"hello": [1, 2]}
    assert job["attempts"] == 1 and job["labels"] == {"team": "a"}
    for key in ("id", "namespace", "queue", "kind", "payload", "error", "progress", "logs", "created_at",
                "started_at", "finished_at"):
        assert key in job


def test_a_batch_is_stored_together(server):
    ids = submit(server, [{"kind": "noop"}, {"kind": "echo", "payload": 3, "queue": "other"}])["ids"]
    assert [poll_until(lambda: ended(server, i))["state"] for i in ids] == ["done", "done"]


def test_a_batch_with_one_bad_job_stores_nothing(server):
    response = server.post("/api/v1/jobs", json=[{"kind": "noop", "queue": "x"}, {"kind": "noop", "priority": "hi"}])
    assert response.status_code == 400
    assert response.json()["index"] == 1 and response.json()["field"] == "priority"
    assert server.get("/api/v1/jobs?queue=x").json()["jobs"] == []


def test_a_kind_no_plugin_runs_is_refused(server):
    response = server.post("/api/v1/jobs", json={"kind": "nobody-runs-this"})
    assert response.status_code == 400 and response.json()["field"] == "kind"


def test_failing_jobs_retry_then_fail(server):
    job_id = submit(server, {"kind": "fail", "payload": "nope", "attempts": 2, "backoff": 0.1})["id"]
    job = poll_until(lambda: ended(server, job_id))
    assert job["state"] == "failed" and job["attempts"] == 2 and "nope" in job["error"]
    assert server.post(f"/api/v1/jobs/{job_id}/retry").status_code == 200
    assert poll_until(lambda: ended(server, job_id))["attempts"] == 2


def test_a_job_past_its_timeout_fails(server):
    job_id = submit(server, {"kind": "sleep", "payload": 5, "timeout": 0.5})["id"]
    job = poll_until(lambda: ended(server, job_id))
    assert job["state"] == "failed" and "timed out" in job["error"]


def test_cancel_a_delayed_job(server):
    job_id = submit(server, {"kind": "noop", "delay": 60})["id"]
    assert record(server, job_id)["state"] == "delayed"
    assert server.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelled"
    assert server.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409


def test_cancelling_a_running_job_stops_it_on_its_worker(cluster):
    cluster.up("--processes", "1", "--worker-threads", "1")
    job_id = submit(cluster, {"kind": "sleep", "payload": 60})["id"]
    poll_until(lambda: record(cluster, job_id)["state"] == "running", what="the sleep job running")
    assert cluster.post(f"/api/v1/jobs/{job_id}/cancel").json()["state"] == "cancelling"
    poll_until(lambda: record(cluster, job_id)["state"] == "cancelled", what="the sleep stopped, then cancelled")
    # The worker's only job thread is free again: a job submitted now runs at once.
    echo_id = submit(cluster, {"kind": "echo", "payload": "next"})["id"]
    assert poll_until(lambda: ended(cluster, echo_id), timeout=10)["result"] == "next"
    assert record(cluster, job_id)["state"] == "cancelled"


def test_queues_list_counts_per_state(server):
    submit(server, [{"kind": "noop", "queue": "counted", "delay": 60}] * 3)
    queues = server.get("/api/v1/queues").json()["queues"]
    [entry] = [q for q in queues if q["queue"] == "counted"]
    assert entry["namespace"] == "default" and entry["counts"]["delayed"] == 3


def test_lists_filter_by_labels_and_page_with_a_cursor(server):
    ids = submit(server, [{"kind": "noop", "delay": 60, "labels": {"team": "a", "env": "x"}} for _ in range(3)])["ids"]
    submit(server, {"kind": "noop", "delay": 60, "labels": {"team": "b"}})
    first = server.get("/api/v1/jobs?label=team:a&label=env:x&limit=2").json()
    second = server.get(f"/api/v1/jobs?label=team:a&limit=2&cursor={first['next_cursor']}").json()
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == ids
    assert second["next_cursor"] is None
    assert server.get("/api/v1/jobs?state=bogus").status_code == 400


def test_unknown_job_is_404(server):
    assert server.get("/api/v1/jobs/nope").status_code == 404


def test_metrics_and_health(server):
    job_id = submit(server, {"kind": "noop"})["id"]
    poll_until(lambda: ended(server, job_id))
    poll_until(lambda: server.get("/healthz").json()["workers"] == 2, what="both workers connected")
    text = server.get("/metrics").text
    for series in ("tubeway_jobs{", "tubeway_jobs_enqueued_total", "tubeway_jobs_dispatched_total",
                   "tubeway_jobs_finished_total", "tubeway_dispatch_latency_seconds_bucket",
                   "tubeway_workers_connected 2.0"):
        assert series in text
    assert server.get("/healthz").json()["workers"] == 2
