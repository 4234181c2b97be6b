"""Cloud Foundry tasks on real processes: what runs, its limits, its children, cancel, lost workers, and lists."""
import json
import os

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procs import gone
from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "cf-secret"
APP_DIR_NAME = "web-app-dir"


@pytest.fixture(scope="module")
def cf(xprocess, tmp_path_factory):
    """One ``tubeway up --enable-commands`` with a configured app ``web`` (its own directory and environment)."""
    base = tmp_path_factory.mktemp("cloudfoundry")
    app_dir = base / APP_DIR_NAME
    app_dir.mkdir()
    apps = {"web": {"dir": str(app_dir), "env": {"GREETING": "hello from web"}, "memory_in_mb": 512,
                    "space_guid": "space-1", "organization_guid": "org-1"}}
    with module_cluster(xprocess, base, TOKEN, "--processes", "1", "--enable-commands", "--command-kill-grace", "2",
                        "--apps", json.dumps(apps)) as cluster:
        cluster.app_dir = app_dir
        yield cluster


def create(cf, app, **body):
    response = cf.post(f"/v3/apps/{app}/tasks", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def task(cf, guid):
    response = cf.get(f"/v3/tasks/{guid}")
    assert response.status_code == 200, response.text
    return response.json()


def ended(cf, guid):
    found = task(cf, guid)
    return found if found["state"] in ("SUCCEEDED", "FAILED") else None


def logs(cf, guid):
    return cf.get(f"/api/v1/jobs/{guid}").json()["logs"]


def test_exit_zero_succeeds_and_a_failing_status_fails_once(cf):
    good = create(cf, "web", command="true")
    bad = create(cf, "web", command="echo no; exit 3")
    assert poll_until(lambda: ended(cf, good["guid"]))["state"] == "SUCCEEDED"
    failed = poll_until(lambda: ended(cf, bad["guid"]))
    assert failed["state"] == "FAILED" and failed["result"]["failure_reason"] == "Exited with status 3"
    assert cf.get(f"/api/v1/jobs/{bad['guid']}").json()["attempts"] == 1
    assert logs(cf, bad["guid"]) == ["no"]


def test_a_configured_app_runs_in_its_directory_with_its_environment_and_the_servers_path(cf):
    created = create(cf, "web", command='echo "$GREETING"; pwd; command -v sh')
    assert created["memory_in_mb"] == 512  # the app's default
    assert poll_until(lambda: ended(cf, created["guid"]))["state"] == "SUCCEEDED"
    greeting, directory, shell = logs(cf, created["guid"])
    assert (greeting, directory) == ("hello from web", str(cf.app_dir)) and shell.endswith("/sh")


def test_an_app_not_configured_gets_a_directory_of_its_own_made_on_first_use(cf):
    created = create(cf, "fresh-app", command="pwd; touch made-here")
    assert poll_until(lambda: ended(cf, created["guid"]))["state"] == "SUCCEEDED"
    [directory] = logs(cf, created["guid"])
    assert directory.startswith(str(cf.data_dir)) and directory.endswith("fresh-app")
    assert os.path.exists(os.path.join(directory, "made-here"))


def test_the_memory_limit_stops_an_allocation(cf):
    grab = 'python3 -c "x = bytearray(400 * 1024 * 1024); print(len(x))"'
    small = create(cf, "limits", command=grab, memory_in_mb=128)
    roomy = create(cf, "limits", command=grab, memory_in_mb=2048)
    assert poll_until(lambda: ended(cf, small["guid"]))["state"] == "FAILED"
    assert poll_until(lambda: ended(cf, roomy["guid"]))["state"] == "SUCCEEDED"
    assert "MemoryError" in "\n".join(logs(cf, small["guid"]))


def test_the_disk_limit_stops_a_file_growing_past_it(cf):
    created = create(cf, "limits", command="head -c 5000000 /dev/zero > big.bin", disk_in_mb=1)
    failed = poll_until(lambda: ended(cf, created["guid"]))
    assert failed["state"] == "FAILED", failed
    assert os.path.getsize(os.path.join(cf.data_dir, "commands", "limits", "big.bin")) <= 1024 * 1024


def test_the_log_rate_limit_drops_the_excess_and_says_how_much(cf):
    created = create(cf, "limits", command="for i in $(seq 1 200); do echo line-$i-padding-padding; done",
                     log_rate_limit_in_bytes_per_second=200)
    assert poll_until(lambda: ended(cf, created["guid"]))["state"] == "SUCCEEDED"
    lines = logs(cf, created["guid"])
    kept = [line for line in lines if line.startswith("line-")]
    assert len(kept) < 200 and any("dropped" in line for line in lines)


def test_a_child_the_command_started_dies_with_it(cf):
    created = create(cf, "children", command="sleep 300 & echo $! > child.pid; exit 0")
    assert poll_until(lambda: ended(cf, created["guid"]))["state"] == "SUCCEEDED"
    pid = int(open(os.path.join(cf.data_dir, "commands", "children", "child.pid")).read())
    assert poll_until(lambda: gone(pid), timeout=10)


def test_cancel_of_a_running_sleep_is_canceling_then_failed_and_the_process_is_gone(cf):
    created = create(cf, "cancel", command="echo $$ > shell.pid; sleep 300")
    pid_file = os.path.join(cf.data_dir, "commands", "cancel", "shell.pid")
    poll_until(lambda: os.path.exists(pid_file) and os.path.getsize(pid_file) > 0)
    pid = int(open(pid_file).read())
    response = cf.post(f"/v3/tasks/{created['guid']}/actions/cancel")
    assert response.status_code == 202 and response.json()["state"] == "CANCELING"
    failed = poll_until(lambda: ended(cf, created["guid"]))
    assert failed["result"]["failure_reason"] == "task was cancelled"
    assert gone(pid)
    again = cf.put(f"/v3/tasks/{created['guid']}/cancel")
    assert again.status_code == 422
    assert again.json()["errors"][0]["detail"] == "Task state is FAILED and therefore cannot be canceled"


def test_a_command_that_kills_its_worker_fails_and_the_pool_replaces_the_worker(cf):
    before = {p.pid for p in psutil.Process(cf.pid("up")).children(recursive=True)}
    created = create(cf, "suicide", command="kill -9 $PPID; sleep 5")
    failed = poll_until(lambda: ended(cf, created["guid"]), timeout=30)
    assert failed["state"] == "FAILED" and failed["result"]["failure_reason"]
    assert poll_until(lambda: cf.workers() >= 1, timeout=30)
    after = create(cf, "suicide", command="true")
    assert poll_until(lambda: ended(cf, after["guid"]), timeout=30)["state"] == "SUCCEEDED"
    assert {p.pid for p in psutil.Process(cf.pid("up")).children(recursive=True)} != before


def listed(cf, path):
    """Every task a list answers, walking ``pagination.next.href`` to the end."""
    found, url = [], cf.url + path
    while url:
        response = cf.request("GET", url[len(cf.url):])
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["resources"])
        url = (body["pagination"]["next"] or {}).get("href")
    return found


def test_every_filter_and_selector_form_lists_what_it_names(cf):
    labels = [{"env": "prod", "tier": "web"}, {"env": "dev", "tier": "web"}, {"env": "prod"}, {}]
    made = [create(cf, "listing", command="true", name=f"job-{i}", metadata={"labels": label})
            for i, label in enumerate(labels)]
    for item in made:
        poll_until(lambda: ended(cf, item["guid"]))
    guids = [item["guid"] for item in made]

    def names(query, path="/v3/apps/listing/tasks"):
        return [t["name"] for t in listed(cf, f"{path}?{query}&per_page=1")]
    assert names("label_selector=env=prod") == ["job-0", "job-2"]
    assert names("label_selector=env==prod,tier=web") == ["job-0"]
    assert names("label_selector=env!=prod") == ["job-1", "job-3"]
    assert names("label_selector=env in (dev,prod)") == ["job-0", "job-1", "job-2"]
    assert names("label_selector=env notin (dev)") == ["job-0", "job-2", "job-3"]
    assert names("label_selector=tier") == ["job-0", "job-1"]
    assert names("label_selector=!tier") == ["job-2", "job-3"]
    assert names("names=job-1,job-3") == ["job-1", "job-3"]
    assert names(f"guids={guids[2]}") == ["job-2"]
    assert names("sequence_ids=1,3") == ["job-0", "job-2"]
    assert names("states=SUCCEEDED&order_by=-created_at") == ["job-3", "job-2", "job-1", "job-0"]
    assert names("states=FAILED,RUNNING") == []
    assert names(f"created_ats[lte]={made[-1]['created_at']}&created_ats[gte]={made[0]['created_at']}") == \
        ["job-0", "job-1", "job-2", "job-3"]
    assert names(f"created_ats={made[0]['created_at']}")[0] == "job-0"
    assert names("created_ats[lt]=2000-01-01T00:00:00Z") == []
    assert names("app_guids=listing&label_selector=tier", "/v3/tasks") == ["job-0", "job-1"]
    assert names("space_guids=space-1&names=job-0", "/v3/tasks") == []  # listing is not configured in space-1
    assert all("command" not in t for t in listed(cf, "/v3/tasks?app_guids=listing"))


def test_each_error_is_cloud_foundrys(cf):
    def error(method, path, **kwargs):
        response = cf.request(method, path, **kwargs)
        [entry] = response.json()["errors"]
        return response.status_code, entry["title"], entry["code"], entry["detail"]
    assert error("GET", "/v3/tasks?per_page=0")[:3] == (400, "CF-BadQueryParameter", 10005)
    assert error("GET", "/v3/tasks?label_selector=a%20in%20(b")[3] == \
        "The query parameter is invalid: Invalid label_selector value"
    assert error("GET", "/v3/tasks?created_ats=yesterday")[3].endswith("Timestamps should be formatted as "
                                                                       "'YYYY-MM-DDThh:mm:ssZ'")
    assert error("POST", "/v3/apps/web/tasks", data=b"{nope")[:3] == (400, "CF-MessageParseError", 1001)
    assert error("POST", "/v3/apps/web/tasks", json={"command": "true", "memory_in_mb": 0})[:4] == \
        (422, "CF-UnprocessableEntity", 10008, "Memory in mb must be greater than 0")
    assert error("POST", "/v3/apps/web/tasks", json={})[3] == "Command No command or template provided"
    assert error("PATCH", "/v3/tasks/x", json={"state": "x"})[3] == "Unknown field(s): 'state'"
    assert error("GET", "/v3/tasks/not-a-task")[:4] == (404, "CF-ResourceNotFound", 10010, "Task not found")
    assert error("GET", "/v3/apps/never-used/tasks")[3] == "App not found"
    assert error("GET", "/v3/tasks", headers={"Authorization": "Bearer wrong"})[:3] == \
        (401, "CF-NotAuthenticated", 10002)
    assert cf.post("/oauth/token", data={"grant_type": "password", "username": "u", "password": "wrong"}) \
        .status_code == 401


words = st.one_of(st.sampled_from(["", "0", "-1", "5001", "1e3", "abc", "created_at", "-updated_at", "PENDING",
                                   "a in (b", "!x", "x==y", "2026-01-31T12:00:00Z", "9" * 40, "a,b,,", "é\u0000"]),
                  st.text(max_size=12))
query_names = st.sampled_from(["page", "per_page", "order_by", "guids", "names", "states", "label_selector",
                               "sequence_ids", "app_guids", "space_guids", "organization_guids", "created_ats",
                               "updated_ats[lt]", "created_ats[gte]", "created_ats[zz]", "app_guid", "bogus"])
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                                     st.text(max_size=8)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
create_bodies = st.dictionaries(st.sampled_from(["command", "name", "memory_in_mb", "disk_in_mb", "metadata",
                                                 "log_rate_limit_in_bytes_per_second", "droplet_guid", "user",
                                                 "template", "extra"]), json_values, max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(query_names, words), max_size=4), body=create_bodies,
       path=st.sampled_from(["/v3/tasks", "/v3/apps/web/tasks", "/v3/apps/fuzz/tasks"]))
def test_any_query_or_body_gets_an_answer_below_500_in_cloud_foundrys_shape(cf, params, body, path):
    listed = cf.request("GET", path, params=params)
    assert listed.status_code in (200, 400, 404), listed.text
    if listed.status_code != 200:
        assert set(listed.json()["errors"][0]) == {"code", "title", "detail"}
    created = cf.post("/v3/apps/fuzz/tasks", json=dict(body, command="true") if "command" not in body else body)
    assert created.status_code in (202, 400, 422), created.text
    if created.status_code == 202:
        patched = cf.request("PATCH", f"/v3/tasks/{created.json()['guid']}", json={"metadata": body.get("metadata")})
        assert patched.status_code in (200, 422), patched.text
