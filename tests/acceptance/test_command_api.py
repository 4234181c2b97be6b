"""``command`` jobs through the native API on real processes: logs, exit status, cancel, and off by default."""
import pytest

from procs import gone
from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "command-secret"


@pytest.fixture(scope="module")
def enabled(xprocess, tmp_path_factory):
    """One ``tubeway up --enable-commands`` for the module's tests that run commands."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("commands"), TOKEN, "--processes", "1",
                        "--enable-commands", "--command-kill-grace", "2") as cluster:
        yield cluster


def submit(server, payload):
    response = server.post("/api/v1/jobs", json={"kind": "command", "payload": payload})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def ended(server, job_id):
    job = server.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed", "cancelled") else None


def test_a_command_succeeds_with_its_output_as_logs(enabled):
    job_id = submit(enabled, {"command": 'echo "hello $WHO"; echo to-stderr >&2; pwd', "env": {"WHO": "cf"}})
    job = poll_until(lambda: ended(enabled, job_id))
    assert job["state"] == "done", job["error"]
    assert job["result"] == {"exit_status": 0}
    assert job["logs"][:2] == ["hello cf", "to-stderr"]
    assert job["logs"][2].endswith("/data/commands/default")


def test_a_failing_exit_status_fails_the_job_once(enabled):
    response = enabled.post("/api/v1/jobs", json={"kind": "command", "payload": {"command": "echo no; exit 3"},
                                                  "attempts": 3})
    assert response.status_code == 201, response.text
    job = poll_until(lambda: ended(enabled, response.json()["id"]))
    assert job["state"] == "failed" and job["error"] == "Exited with status 3"
    assert job["logs"] == ["no"] and job["attempts"] == 1


def test_cancelling_a_running_command_kills_its_process_group(enabled):
    job_id = submit(enabled, {"command": "sleep 300 & echo $! $$ > pids.tmp && mv pids.tmp pids; sleep 300"})
    pids_file = enabled.data_dir / "commands" / "default" / "pids"
    pids = poll_until(lambda: pids_file.exists() and [int(pid) for pid in pids_file.read_text().split()])
    assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    assert enabled.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    assert poll_until(lambda: all(gone(pid) for pid in pids) or None, timeout=10)
    assert poll_until(lambda: ended(enabled, job_id))["state"] == "cancelled"


def test_without_enable_commands_a_command_job_is_refused_with_400(cluster):
    cluster.up("--processes", "1")
    response = cluster.post("/api/v1/jobs", json={"kind": "command", "payload": {"command": "true"}})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "enable_commands" and "enable_commands" in str(body), body
