"""A team's plugin, installed for real from examples/, runs jobs of its own kind."""
import subprocess
import sys
from pathlib import Path

import pytest

from twkit import poll_until

pytestmark = pytest.mark.acceptance
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "team_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """examples/team_plugin installed (pip, entry point and all) into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(EXAMPLE)], check=True, timeout=300)
    return target


def test_an_installed_plugin_runs_its_kind(cluster, plugin_site):
    cluster.up("--processes", "1", env={"PYTHONPATH": str(plugin_site)})
    response = cluster.post("/api/v1/jobs", json={"kind": "team.reverse", "payload": "tubeway"})
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    job = poll_until(lambda: _ended(cluster, job_id), what="plugin job done")
    assert job["state"] == "done" and job["result"] == "yawebut"


def test_tubeway_plugins_restricts_what_loads(cluster, plugin_site):
    cluster.up("--processes", "1", env={"PYTHONPATH": str(plugin_site), "TUBEWAY_PLUGINS": "external,testing,callback"})
    response = cluster.post("/api/v1/jobs", json={"kind": "team.reverse", "payload": "x"})
    assert response.status_code == 400


def _ended(cluster, job_id):
    job = cluster.get(f"/api/v1/jobs/{job_id}").json()
    return job if job["state"] in ("done", "failed") else None
