"""cloud_controller_ng's ``spec/request/tasks_spec.rb``, ported: its concrete assertions that apply to Tubeway.

Pagination examples (links and totals), the global list without ``command``, filters with the
exact ``expected_query`` of each link, create's 202 body, PATCH of metadata, cancel (202
CANCELING; 422 once ended), and the errors Cloud Controller answers (bad query parameters,
unknown fields, not found, the ``task_creation`` feature flag), each as
``{"errors": [{"code", "title", "detail"}]}``. One real ``tubeway up`` per module.
"""
import re
import time
from urllib.parse import quote_plus

import pytest

from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "cf-spec-secret"
#: An app configured with its space and organization (the global filter example needs them).
CONFIGURED = "app-configured"
SPACE, ORG = "space-guid-1", "org-guid-1"
ISO8601 = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
TASK_KEYS = {"guid", "sequence_id", "name", "command", "user", "state", "memory_in_mb", "disk_in_mb",
             "log_rate_limit_in_bytes_per_second", "result", "droplet_guid", "relationships", "metadata",
             "created_at", "updated_at", "links"}


@pytest.fixture(scope="module")
def server(xprocess, tmp_path_factory):
    base = tmp_path_factory.mktemp("cfspec")
    config = base / "tubeway.toml"
    config.write_text(f'[apps.{CONFIGURED}]\nspace_guid = "{SPACE}"\norganization_guid = "{ORG}"\n')
    with module_cluster(xprocess, base, TOKEN, "--config", config, "--processes", "2", "--enable-commands",
                        "--command-kill-grace", "2") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def disabled(xprocess, tmp_path_factory):
    """A server without ``--enable-commands``: the ``task_creation`` feature flag is off."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("cfspec-off"), TOKEN, "--processes", "1") as cluster:
        yield cluster


def create(server, app, **body):
    body.setdefault("command", "true")
    response = server.post(f"/v3/apps/{app}/tasks", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def ended(server, guid):
    task = server.get(f"/v3/tasks/{guid}").json()
    return task if task["state"] in ("SUCCEEDED", "FAILED") else None


def running(server, guid):
    return server.get(f"/v3/tasks/{guid}").json()["state"] == "RUNNING" or None


def cf_error(response, status, title, code):
    """The one error of a Cloud Foundry ``errors`` body (exactly code, title, detail); returns its detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1, body
    [error] = body["errors"]
    assert set(error) == {"code", "title", "detail"}, error
    assert (error["title"], error["code"]) == (title, code), error
    return error["detail"]


def links(url, query):
    return {"href": f"{url}?{query}"}


def one_page(url, query):
    return {"total_results": 1, "total_pages": 1, "first": links(url, query), "last": links(url, query),
            "next": None, "previous": None}


# -- GET /v3/tasks: pagination (runs first: the global list holds these three tasks only) ----------------
def test_global_list_pagination_example(server):
    assert server.get("/v3/tasks").json()["pagination"]["total_results"] == 0, "must run before other tasks"
    app = "app-global-paging"
    task1 = create(server, app, name="task one", command="echo task", user="TestUser", memory_in_mb=5,
                   disk_in_mb=10, log_rate_limit_in_bytes_per_second=20, droplet_guid="droplet-1")
    task2 = create(server, app, name="task two", command="echo task", memory_in_mb=100, disk_in_mb=500,
                   log_rate_limit_in_bytes_per_second=1024)
    create(server, app)
    response = server.get("/v3/tasks?per_page=2")
    assert response.status_code == 200, response.text
    body = response.json()
    url = f"{server.url}/v3/tasks"
    assert body["pagination"] == {
        "total_results": 3, "total_pages": 2,
        "first": links(url, "page=1&per_page=2"), "last": links(url, "page=2&per_page=2"),
        "next": links(url, "page=2&per_page=2"), "previous": None,
    }
    first, second = body["resources"]
    assert (first["guid"], second["guid"]) == (task1["guid"], task2["guid"])
    # The global list leaves out each task's command (Cloud Controller's expected_response has none).
    assert set(first) == TASK_KEYS - {"command"} and "command" not in second
    assert (first["name"], first["user"], first["memory_in_mb"], first["disk_in_mb"],
            first["log_rate_limit_in_bytes_per_second"]) == ("task one", "TestUser", 5, 10, 20)
    assert first["droplet_guid"] == "droplet-1" and first["result"] == {"failure_reason": None}
    assert first["relationships"] == {"app": {"data": {"guid": app}}}
    assert first["metadata"] == {"labels": {}, "annotations": {}}
    assert ISO8601.match(first["created_at"]) and ISO8601.match(first["updated_at"])
    assert first["links"] == {
        "self": {"href": f"{server.url}/v3/tasks/{task1['guid']}"},
        "app": {"href": f"{server.url}/v3/apps/{app}"},
        "cancel": {"href": f"{server.url}/v3/tasks/{task1['guid']}/actions/cancel", "method": "POST"},
        "droplet": {"href": f"{server.url}/v3/droplets/droplet-1"},
    }
    assert (second["name"], second["memory_in_mb"], second["disk_in_mb"],
            second["log_rate_limit_in_bytes_per_second"]) == ("task two", 100, 500, 1024)
    last = server.get("/v3/tasks?page=2&per_page=2").json()
    assert last["pagination"]["next"] is None
    assert last["pagination"]["previous"] == links(url, "page=1&per_page=2")
    assert len(last["resources"]) == 1


def test_app_list_pagination_example_and_get_show_the_command(server):
    app = "app-paging"
    task1 = create(server, app, name="task one", command="echo task", memory_in_mb=5, disk_in_mb=50,
                   log_rate_limit_in_bytes_per_second=64)
    task2 = create(server, app, name="task two", command="echo task", memory_in_mb=100, disk_in_mb=500,
                   log_rate_limit_in_bytes_per_second=256)
    create(server, app)
    body = server.get(f"/v3/apps/{app}/tasks?per_page=2").json()
    url = f"{server.url}/v3/apps/{app}/tasks"
    assert body["pagination"] == {
        "total_results": 3, "total_pages": 2,
        "first": links(url, "page=1&per_page=2"), "last": links(url, "page=2&per_page=2"),
        "next": links(url, "page=2&per_page=2"), "previous": None,
    }
    assert [task["guid"] for task in body["resources"]] == [task1["guid"], task2["guid"]]
    assert all(task["command"] == "echo task" for task in body["resources"])
    assert set(body["resources"][0]) == TASK_KEYS
    assert "droplet" not in body["resources"][0]["links"]
    got = server.get(f"/v3/tasks/{task1['guid']}").json()
    assert got["command"] == "echo task" and set(got) == TASK_KEYS
    assert {key: got[key] for key in ("guid", "sequence_id", "name", "memory_in_mb", "disk_in_mb",
                                      "log_rate_limit_in_bytes_per_second", "links", "relationships")} == \
        {key: task1[key] for key in ("guid", "sequence_id", "name", "memory_in_mb", "disk_in_mb",
                                     "log_rate_limit_in_bytes_per_second", "links", "relationships")}


# -- POST /v3/apps/:guid/tasks ---------------------------------------------------------------------------------
def test_create_answers_202_with_the_task(server):
    app = "app-create"
    body = create(server, app, name="best task ever", command="true && true", user="TestUser", memory_in_mb=1234,
                  disk_in_mb=1000, metadata={"labels": {"bananas": "gros_michel"},
                                             "annotations": {"wombats": "althea"}})
    guid = body["guid"]
    assert set(body) == TASK_KEYS
    assert body["sequence_id"] == 1 and body["name"] == "best task ever" and body["command"] == "true && true"
    assert body["user"] == "TestUser" and body["memory_in_mb"] == 1234 and body["disk_in_mb"] == 1000
    assert body["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
    assert body["result"] == {"failure_reason": None}
    assert body["droplet_guid"] is None
    assert body["relationships"] == {"app": {"data": {"guid": app}}}
    assert body["metadata"] == {"labels": {"bananas": "gros_michel"}, "annotations": {"wombats": "althea"}}
    assert ISO8601.match(body["created_at"]) and ISO8601.match(body["updated_at"])
    assert body["links"] == {
        "self": {"href": f"{server.url}/v3/tasks/{guid}"},
        "app": {"href": f"{server.url}/v3/apps/{app}"},
        "cancel": {"href": f"{server.url}/v3/tasks/{guid}/actions/cancel", "method": "POST"},
    }
    second = create(server, app)
    assert second["sequence_id"] == 2
    assert re.fullmatch(r"[0-9a-f]{8}", second["name"]), second["name"]


def test_create_with_a_droplet_guid_links_the_droplet(server):
    body = create(server, "app-create-droplet", name="best task ever", memory_in_mb=1234,
                  droplet_guid="non-assigned-droplet")
    assert body["droplet_guid"] == "non-assigned-droplet"
    assert body["links"]["droplet"]["href"] == f"{server.url}/v3/droplets/non-assigned-droplet"


def test_create_with_an_unknown_field_is_422(server):
    response = server.post("/v3/apps/app-create/tasks", json={"command": "true", "bogus": 1})
    assert cf_error(response, 422, "CF-UnprocessableEntity", 10008) == "Unknown field(s): 'bogus'"


def test_without_enable_commands_create_is_403_feature_disabled(disabled):
    response = disabled.post("/v3/apps/some-app/tasks", json={"command": "true"})
    assert cf_error(response, 403, "CF-FeatureDisabled", 330002) == "Feature Disabled: task_creation"


# -- filtering -------------------------------------------------------------------------------------------------
def test_app_list_filters_by_name(server):
    app = "app-filter-names"
    expected = create(server, app, name="task one")
    create(server, app, name="task two")
    body = server.get(f"/v3/apps/{app}/tasks", params={"names": "task one"}).json()
    assert [task["guid"] for task in body["resources"]] == [expected["guid"]]
    assert body["pagination"] == one_page(f"{server.url}/v3/apps/{app}/tasks", "names=task+one&page=1&per_page=50")


def test_app_list_filters_by_state(server):
    app = "app-filter-states"
    expected = create(server, app, command="exit 0")
    other = create(server, app, command="exit 1")
    for task in (expected, other):
        poll_until(lambda: ended(server, task["guid"]))
    body = server.get(f"/v3/apps/{app}/tasks", params={"states": "SUCCEEDED"}).json()
    assert [task["guid"] for task in body["resources"]] == [expected["guid"]]
    assert body["pagination"] == one_page(f"{server.url}/v3/apps/{app}/tasks", "page=1&per_page=50&states=SUCCEEDED")


def test_app_list_filters_by_sequence_id(server):
    app = "app-filter-sequence"
    expected = create(server, app)
    create(server, app)
    body = server.get(f"/v3/apps/{app}/tasks", params={"sequence_ids": expected["sequence_id"]}).json()
    assert [task["guid"] for task in body["resources"]] == [expected["guid"]]
    query = f"page=1&per_page=50&sequence_ids={expected['sequence_id']}"
    assert body["pagination"] == one_page(f"{server.url}/v3/apps/{app}/tasks", query)


def test_global_list_filters_example_and_label_selector(server):
    task1 = create(server, CONFIGURED, name="task one", command="echo task",
                   metadata={"labels": {"boomerang": "gel"}})
    task2 = create(server, CONFIGURED, name="task two", command="echo task",
                   metadata={"labels": {"boomerang": "gunnison"}})
    create(server, CONFIGURED)
    poll_until(lambda: ended(server, task1["guid"]))
    query = {"app_guids": CONFIGURED, "names": "task one", "organization_guids": ORG, "space_guids": SPACE,
             "states": "SUCCEEDED", "label_selector": "boomerang"}
    body = server.get("/v3/tasks", params=query).json()
    assert [task["guid"] for task in body["resources"]] == [task1["guid"]]
    expected_query = (f"app_guids={CONFIGURED}&label_selector=boomerang&names=task+one&organization_guids={ORG}"
                      f"&page=1&per_page=50&space_guids={SPACE}&states=SUCCEEDED")
    assert body["pagination"] == one_page(f"{server.url}/v3/tasks", expected_query)

    response = server.get("/v3/tasks?label_selector=boomerang=gel")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [task["guid"] for task in body["resources"]] == [task1["guid"]]
    assert body["pagination"] == one_page(f"{server.url}/v3/tasks", "label_selector=boomerang%3Dgel&page=1&per_page=50")
    others = server.get("/v3/tasks?label_selector=boomerang!=gel").json()["resources"]
    assert task2["guid"] in [task["guid"] for task in others] and task1["guid"] not in [t["guid"] for t in others]


# -- cancel ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, path", [("POST", "actions/cancel"), ("PUT", "cancel")])
def test_cancel_answers_202_canceling_then_the_task_fails_cancelled(server, method, path):
    task = create(server, "app-cancel", name="task", command="sleep 30")
    poll_until(lambda: running(server, task["guid"]), timeout=20)
    response = server.request(method, f"/v3/tasks/{task['guid']}/{path}")
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["guid"], body["name"], body["command"]) == (task["guid"], "task", "sleep 30")
    assert body["state"] == "CANCELING" and body["result"] == {"failure_reason": None}
    done = poll_until(lambda: ended(server, task["guid"]), timeout=20)
    assert done["state"] == "FAILED" and done["result"] == {"failure_reason": "task was cancelled"}
    again = server.post(f"/v3/tasks/{task['guid']}/actions/cancel")
    assert cf_error(again, 422, "CF-UnprocessableEntity", 10008) == \
        "Task state is FAILED and therefore cannot be canceled"


def test_cancel_of_a_succeeded_task_is_422(server):
    task = create(server, "app-cancel", command="true")
    poll_until(lambda: ended(server, task["guid"]))
    response = server.post(f"/v3/tasks/{task['guid']}/actions/cancel")
    assert cf_error(response, 422, "CF-UnprocessableEntity", 10008) == \
        "Task state is SUCCEEDED and therefore cannot be canceled"


# -- PATCH /v3/tasks/:guid ---------------------------------------------------------------------------------------
def test_patch_updates_the_metadata(server):
    task = create(server, "app-patch", name="task", command="echo task",
                  metadata={"labels": {"keep": "me", "drop": "me"}})
    response = server.request("PATCH", f"/v3/tasks/{task['guid']}",
                              json={"metadata": {"labels": {"potato": "yam", "drop": None},
                                                 "annotations": {"potato": "idaho"}}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"] == {"labels": {"keep": "me", "potato": "yam"}, "annotations": {"potato": "idaho"}}
    assert set(body) == TASK_KEYS and body["command"] == "echo task" and body["name"] == "task"
    assert server.get(f"/v3/tasks/{task['guid']}").json()["metadata"] == body["metadata"]
    bad = server.request("PATCH", f"/v3/tasks/{task['guid']}", json={"name": "renamed"})
    assert cf_error(bad, 422, "CF-UnprocessableEntity", 10008) == "Unknown field(s): 'name'"


# -- query parameter errors and not found -----------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v3/tasks", "/v3/apps/app-create/tasks"])
def test_unknown_query_parameters_are_400(server, path):
    detail = cf_error(server.get(f"{path}?x=1&y=2"), 400, "CF-BadQueryParameter", 10005)
    assert "Unknown query parameter(s): 'x', 'y'" in detail, detail


def test_filters_of_the_other_list_are_unknown_query_parameters(server):
    detail = cf_error(server.get("/v3/tasks?sequence_ids=1"), 400, "CF-BadQueryParameter", 10005)
    assert "Unknown query parameter(s): 'sequence_ids'" in detail, detail
    detail = cf_error(server.get("/v3/apps/app-create/tasks?app_guids=app-create"), 400, "CF-BadQueryParameter",
                      10005)
    assert "Unknown query parameter(s): 'app_guids'" in detail, detail


@pytest.mark.parametrize("query, message", [
    ("per_page=0", "Per page must be a positive integer"),
    ("per_page=5001", "Per page must be between 1 and 5000"),
    ("order_by=bogus", "Order by can only be: 'created_at', 'updated_at'"),
    ("page=0", "Page must be a positive integer"),
])
def test_bad_paging_parameters_are_400_with_cf_messages(server, query, message):
    detail = cf_error(server.get(f"/v3/tasks?{query}"), 400, "CF-BadQueryParameter", 10005)
    assert message in detail, detail


def test_not_found(server):
    assert cf_error(server.get("/v3/tasks/no-such-task"), 404, "CF-ResourceNotFound", 10010) == "Task not found"
    assert cf_error(server.post("/v3/tasks/no-such-task/actions/cancel"), 404, "CF-ResourceNotFound",
                    10010) == "Task not found"
    assert cf_error(server.get("/v3/apps/never-used-app/tasks"), 404, "CF-ResourceNotFound",
                    10010) == "App not found"


def test_without_the_token_is_401_not_authenticated(server):
    response = server.get("/v3/tasks", headers={"Authorization": "Bearer wrong"})
    assert cf_error(response, 401, "CF-NotAuthenticated", 10002)


# -- 'list query endpoint': 200 with every parameter the list message allows ------------------------------------
def _rails_query(params):
    """``Hash#to_query``: sorted, arrays as ``key[]=v``, hashes as ``key[op]=v``."""
    pairs = []
    for key, value in sorted(params.items()):
        if isinstance(value, list):
            pairs += [(f"{key}[]", v) for v in value]
        elif isinstance(value, dict):
            pairs += [(f"{key}[{op}]", v) for op, v in sorted(value.items())]
        else:
            pairs.append((key, value))
    return "&".join(f"{quote_plus(k)}={quote_plus(str(v))}" for k, v in pairs)


def test_the_global_list_answers_200_with_every_parameter(server):
    now = server.get("/v3/tasks").json()["resources"][0]["created_at"]
    query = _rails_query({"page": "2", "per_page": "10", "order_by": "updated_at", "guids": "foo,bar",
                          "app_guids": "foo,bar", "space_guids": "test", "names": ["foo", "bar"],
                          "states": ["test", "foo"], "organization_guids": "foo,bar", "label_selector": "foo,bar",
                          "created_ats": f"{now},{now}", "updated_ats": {"gt": now}})
    response = server.get(f"/v3/tasks?{query}")
    assert response.status_code == 200, response.text


def test_the_global_list_with_an_app_guid_answers_200_with_the_app_list_parameters(server):
    """CF reads ``app_guid`` in the query as the nested route's: sequence_ids is then allowed."""
    now = server.get("/v3/tasks").json()["resources"][0]["created_at"]
    query = _rails_query({"states": ["foo", "bar"], "guids": ["foo", "bar"], "names": ["foo", "bar"],
                          "app_guid": "app-paging", "sequence_ids": "1,2", "page": "2", "per_page": "10",
                          "order_by": "updated_at", "label_selector": "foo,bar", "created_ats": f"{now},{now}",
                          "updated_ats": {"gt": now}})
    response = server.get(f"/v3/tasks?{query}")
    assert response.status_code == 200, response.text
    # It is the app's list, links and all; the route's app_guid wins over the query's.
    body = server.get("/v3/tasks?app_guid=app-paging&per_page=2").json()
    url = f"{server.url}/v3/apps/app-paging/tasks"
    assert body["pagination"]["total_results"] == 3
    assert body["pagination"]["first"] == links(url, "page=1&per_page=2")
    assert all("command" in task for task in body["resources"])
    assert cf_error(server.get("/v3/tasks?app_guid=never-used-app"), 404, "CF-ResourceNotFound",
                    10010) == "App not found"
    nested = server.get("/v3/apps/app-paging/tasks?app_guid=other&per_page=2").json()
    assert nested["pagination"] == body["pagination"]


# -- 'list_endpoint_with_common_filters' and 'paginated response' ---------------------------------------------
@pytest.mark.parametrize("lister", ["/v3/tasks?app_guids=app-common&", "/v3/apps/app-common/tasks?"])
def test_common_filters_guids_and_created_ats(server, lister):
    app = "app-common"
    if server.get(f"/v3/apps/{app}/tasks").status_code == 404:
        first = create(server, app, name="first")
        poll_until(lambda: timestamp_now() > first["created_at"] or None, timeout=5, what="the next second")
        create(server, app, name="second")
    first, second = server.get(f"/v3/apps/{app}/tasks").json()["resources"]
    assert first["created_at"] < second["created_at"]

    def guids(query):
        response = server.get(f"{lister}{query}")
        assert response.status_code == 200, response.text
        return [task["guid"] for task in response.json()["resources"]]
    assert guids(f"guids={first['guid']},{second['guid']},no-such-guid") == [first["guid"], second["guid"]]
    assert guids(f"guids={second['guid']}") == [second["guid"]]
    assert guids(f"created_ats[lt]={second['created_at']}") == [first["guid"]]
    assert guids(f"created_ats[gte]={second['created_at']}") == [second["guid"]]
    assert guids(f"created_ats={first['created_at']}") == [first["guid"]]
    assert guids("order_by=-created_at") == [second["guid"], first["guid"]]


def timestamp_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def test_paginated_response_keeps_filtering_information_in_links(server):
    app = "app-paging"
    names = ["task one", "task two"]
    body = server.get(f"/v3/apps/{app}/tasks", params={"per_page": 1, "names": ",".join(names)}).json()
    assert body["pagination"]["total_results"] == 2 and body["pagination"]["total_pages"] == 2
    assert body["pagination"]["next"] == links(f"{server.url}/v3/apps/{app}/tasks",
                                               "names=task+one%2Ctask+two&page=2&per_page=1")
