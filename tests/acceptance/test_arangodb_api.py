"""The ArangoDB tasks API (API-NOTES section 3) on a real ``tubeway up``: routes, errors, runs, auth.

One server serves the module (auth tokens configured, so every request carries one);
each test works in a database of its own, so the lists it reads hold only its tasks.
"""
import base64

import pytest
import requests

from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "arango-secret"
DATABASES = ("fresh", "routes", "errors", "timed", "periodic", "params", "deleted", "auth")
#: Path prefixes a database is reached by: ``_system`` also without one.
PREFIXES = ("", "/_db/_system", "/_db/routes")


@pytest.fixture(scope="module")
def server(xprocess, tmp_path_factory):
    """One ``tubeway up`` for the module, with a token and the test databases; stopped afterwards."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("arangodb"), TOKEN, "--processes", "1",
                        "--arangodb-databases", ",".join(DATABASES)) as cluster:
        yield cluster


def tasks(database):
    return f"/_db/{database}/_api/tasks"


def error_of(response, status, error_num):
    """Assert ``response`` is ArangoDB's error body with this status and errorNum; return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code", "errorNum", "errorMessage"}, body
    assert body["error"] is True and body["code"] == status and body["errorNum"] == error_num, body
    return body["errorMessage"]


def runs_of(server, task_id):
    """The native API's jobs that are runs of the task ``task_id``."""
    response = server.get("/api/v1/jobs", params={"namespace": "arangodb", "label": f"task_id:{task_id}"})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def done_runs(server, task_id, count=1):
    ended = [job for job in runs_of(server, task_id) if job["state"] in ("done", "failed")]
    return ended if len(ended) >= count else None


def test_a_fresh_database_lists_no_tasks(server):
    for path in (tasks("fresh"), tasks("fresh") + "/"):
        response = server.get(path)
        assert response.status_code == 200 and response.json() == []


def test_every_route_with_and_without_the_database_prefix(server):
    for prefix in PREFIXES:
        database = "routes" if prefix.endswith("routes") else "_system"
        base = prefix + "/_api/tasks"
        made = []
        # POST without and with a trailing slash, generated and body ids.
        for path, body_id in ((base, None), (base + "/", None), (base, f"body{len(prefix)}")):
            body = {"name": "n", "command": "return 1", "offset": 3600, **({"id": body_id} if body_id else {})}
            response = server.post(path, json=body)
            assert response.status_code == 200, response.text
            task = response.json()
            assert task["id"] == body_id if body_id else task["id"].isdigit()
            made.append(task)
        # POST /<id>: the body's id wins, else the path's; PUT /<id> creates with the path's id.
        response = server.post(f"{base}/path{len(prefix)}", json={"id": f"won{len(prefix)}", "command": "return 1",
                                                                  "offset": 3600})
        assert response.json()["id"] == f"won{len(prefix)}"
        made.append(response.json())
        response = server.post(f"{base}/path{len(prefix)}/", json={"command": "return 1", "offset": 3600})
        assert response.json()["id"] == f"path{len(prefix)}"
        made.append(response.json())
        response = server.put(f"{base}/put{len(prefix)}", json={"command": "return 1", "period": 5, "offset": 3600})
        assert response.status_code == 200 and response.json()["id"] == f"put{len(prefix)}"
        made.append(response.json())
        for task in made:
            assert task["database"] == database
            assert isinstance(task["created"], float)
            # Create replies exactly what a later GET returns, with and without a trailing slash.
            for path in (f"{base}/{task['id']}", f"{base}/{task['id']}/"):
                assert server.get(path).content == server.get(f"{base}/{task['id']}").content
                assert server.get(path).json() == task
        listed = {task["id"]: task for task in server.get(base).json()}
        assert all(listed[task["id"]] == task for task in made)
        for task in made:
            response = server.delete(f"{base}/{task['id']}")
            assert response.status_code == 200 and response.json() == {"error": False, "code": 200}
        assert not {task["id"] for task in made} & {task["id"] for task in server.get(base + "/").json()}


def test_a_task_object_is_arangodbs(server):
    body = {"name": "SampleTask", "command": "return params.foo", "params": {"foo": "bar"}, "period": 2,
            "offset": 3600}
    created = server.post(tasks("routes"), json=body)
    task = created.json()
    # Byte for byte what a later GET returns (python-arango-async and pyArango compare raw bodies).
    assert server.get(f"{tasks('routes')}/{task['id']}").content == created.content
    assert list(task) == ["id", "name", "created", "type", "period", "offset", "command", "database"]
    assert task["name"] == "SampleTask" and task["type"] == "periodic" and task["period"] == 2
    assert task["offset"] == 3600 and task["database"] == "routes"
    assert task["command"] == "(function (params) { return params.foo } )(params);"
    assert b'"created":' in server.get(f"{tasks('routes')}/{task['id']}").content
    timed = server.post(tasks("routes"), json={"command": "return 1", "offset": 3600}).json()
    assert timed["type"] == "timed" and "period" not in timed and timed["name"] == "user-defined task"
    for made in (task, timed):
        server.delete(f"{tasks('routes')}/{made['id']}")


@pytest.mark.parametrize("prefix", ["", "/_db/errors"])
def test_every_error_is_arangodbs_body(server, prefix):
    base = prefix + "/_api/tasks"
    assert error_of(server.get(f"{base}/nope"), 404, 1852) == "task not found"
    assert error_of(server.delete(f"{base}/nope"), 404, 1852) == "task not found"
    assert error_of(server.get(f"{base}/{'x' * 300}"), 404, 1852) == "task not found"
    server.put(f"{base}/dup", json={"command": "return 1", "offset": 3600})
    assert error_of(server.put(f"{base}/dup", json={"command": "return 1"}), 409, 1851) == "duplicate task id"
    assert error_of(server.post(base, json={"id": "dup", "command": "return 1"}), 409, 1851) == "duplicate task id"
    assert error_of(server.post(base, json={"name": "x"}), 400, 10) == "command must be specified"
    assert error_of(server.post(base, json={"command": 7}), 400, 10) == "command must be specified"
    message = error_of(server.post(base, json={"command": "return ("}), 400, 10)
    assert message.startswith("cannot compile command")
    for period in (0, -1, "soon", True):
        message = error_of(server.post(base, json={"command": "return 1", "period": period}), 400, 10)
        assert message == "task period must be specified and positive"
    error_of(server.post(base, data=b'{"command": '), 400, 600)
    error_of(server.put(f"{base}/bad-json", data=b"not json"), 400, 600)
    error_of(server.post(base, json=["command"]), 400, 10)
    for method in ("GET", "POST", "PUT", "DELETE"):
        error_of(server.request(method, f"{base}/a/b", json={"command": "return 1"}), 400, 601)
    for method, path in (("PATCH", base), ("PATCH", f"{base}/dup"), ("PUT", base), ("DELETE", base),
                         ("OPTIONS", base)):
        error_of(server.request(method, path), 405, 405)
    assert server.get(f"{base}/dup").status_code == 200  # none of the errors touched it
    server.delete(f"{base}/dup")


def test_an_unknown_database_is_1228(server):
    for method, path in (("GET", "/_db/nosuch/_api/tasks"), ("GET", "/_db/nosuch/_api/tasks/1"),
                         ("POST", "/_db/nosuch/_api/tasks"), ("PUT", "/_db/nosuch/_api/tasks/x"),
                         ("DELETE", "/_db/nosuch/_api/tasks/x"), ("GET", "/_db//_api/tasks")):
        message = error_of(server.request(method, path, json={"command": "return 1"}), 404, 1228)
        assert message == "database not found"


def test_a_task_is_only_seen_in_its_own_database(server):
    task = server.post(tasks("routes"), json={"command": "return 1", "offset": 3600}).json()
    error_of(server.get(f"/_api/tasks/{task['id']}"), 404, 1852)
    error_of(server.delete(f"{tasks('errors')}/{task['id']}"), 404, 1852)
    assert server.get(f"{tasks('routes')}/{task['id']}").json() == task
    server.delete(f"{tasks('routes')}/{task['id']}")


def test_a_timed_task_runs_once_then_vanishes_and_its_run_stays_in_the_native_api(server):
    task = server.post(tasks("timed"), json={"command": "print('ran', params.n); return params.n + 1",
                                             "params": {"n": 41}, "offset": 0.5}).json()
    assert task["type"] == "timed"
    [run] = poll_until(lambda: done_runs(server, task["id"]), what="the timed task's run")
    assert run["state"] == "done" and run["result"] == 42 and run["logs"] == ["ran 41"]
    assert run["kind"] == "javascript" and run["queue"] == "timed"
    assert run["labels"] == {"schedule": task["id"], "task_id": task["id"], "task_name": "user-defined task"}
    found = server.get("/api/v1/jobs", params={"namespace": "arangodb", "label": f"task_id:{task['id']}"})
    assert [job["id"] for job in found.json()["jobs"]] == [run["id"]]
    poll_until(lambda: server.get(f"{tasks('timed')}/{task['id']}").status_code == 404, what="the task gone")
    error_of(server.get(f"{tasks('timed')}/{task['id']}"), 404, 1852)
    assert server.get(tasks("timed")).json() == []
    assert len(runs_of(server, task["id"])) == 1


def test_a_periodic_task_runs_again_and_again_until_deleted(server):
    task = server.put(f"{tasks('periodic')}/tick", json={"command": "return params", "params": [1, 2],
                                                         "period": 0.3}).json()
    assert task["type"] == "periodic"
    runs = poll_until(lambda: done_runs(server, "tick", 3), what="three runs")
    assert all(run["result"] == [1, 2] and run["state"] == "done" for run in runs)
    assert server.get(tasks("periodic")).json() == [task]  # still there between runs
    assert server.delete(f"{tasks('periodic')}/tick").status_code == 200
    assert server.get(tasks("periodic")).json() == []


def test_params_reach_the_command_and_a_throw_is_a_failed_run(server):
    params = {"list": [1, 2, 3], "name": "arango", "nested": {"ok": True}}
    task = server.post(tasks("params"), json={"command": "return {sum: params.list.reduce((a, b) => a + b, 0), "
                                                         "name: params.name, ok: params.nested.ok}",
                                              "params": params}).json()
    [run] = poll_until(lambda: done_runs(server, task["id"]), what="the run")
    assert run["result"] == {"sum": 6, "name": "arango", "ok": True}
    no_params = server.post(tasks("params"), json={"command": "return typeof params"}).json()
    [run] = poll_until(lambda: done_runs(server, no_params["id"]), what="the run without params")
    assert run["result"] in ("undefined", "object")
    throws = server.post(tasks("params"), json={"command": "throw new Error('boom')"}).json()
    [run] = poll_until(lambda: done_runs(server, throws["id"]), what="the failing run")
    assert run["state"] == "failed" and "boom" in run["error"]
    # A periodic task goes on after a run that throws.
    server.put(f"{tasks('params')}/throws-often", json={"command": "throw new Error('again')", "period": 0.2})
    runs = poll_until(lambda: done_runs(server, "throws-often", 2), what="two failed runs")
    assert all(run["state"] == "failed" and "again" in run["error"] for run in runs)
    assert server.delete(f"{tasks('params')}/throws-often").status_code == 200


def test_a_task_deleted_before_its_offset_never_runs(server):
    doomed = server.post(tasks("deleted"), json={"command": "return 'doomed'", "offset": 1}).json()
    assert server.delete(f"{tasks('deleted')}/{doomed['id']}").status_code == 200
    # A task due after the deleted one would have been: once it ran, the deleted one's time has passed.
    witness = server.post(tasks("deleted"), json={"command": "return 'witness'", "offset": 1.5}).json()
    poll_until(lambda: done_runs(server, witness["id"]), what="the witness's run")
    assert runs_of(server, doomed["id"]) == []
    assert server.get(tasks("deleted")).json() == []


def test_auth_takes_basic_and_lower_case_bearer(server):
    url = server.url + tasks("auth")
    basic = base64.b64encode(f"root:{TOKEN}".encode()).decode()
    wrong = base64.b64encode(b"root:wrong").decode()
    assert requests.get(url, timeout=10).status_code == 401
    error_of(requests.get(url, timeout=10), 401, 401)
    error_of(requests.get(url, headers={"Authorization": f"Basic {wrong}"}, timeout=10), 401, 401)
    error_of(requests.post(url, json={"command": "return 1"}, timeout=10), 401, 401)
    for header in (f"Basic {basic}", f"bearer {TOKEN}", f"Bearer {TOKEN}"):
        response = requests.get(url, headers={"Authorization": header}, timeout=10)
        assert response.status_code == 200 and response.json() == [], header
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.postgres
def test_on_postgresql_create_equals_get_and_a_timed_task_runs(cluster, postgres_url):
    cluster.up("--processes", "1", "--db", postgres_url)
    created = cluster.put("/_api/tasks/pg", json={"name": "pg", "command": "return params * 2", "params": 21,
                                                  "offset": 0.2})
    assert created.status_code == 200, created.text
    periodic = cluster.post("/_api/tasks", json={"command": "return 1", "period": 60, "offset": 3600})
    assert cluster.get(f"/_api/tasks/{periodic.json()['id']}").content == periodic.content
    [run] = poll_until(lambda: done_runs(cluster, "pg"), what="the run on PostgreSQL")
    assert run["result"] == 42
    poll_until(lambda: cluster.get("/_api/tasks/pg").status_code == 404, what="the timed task gone")
