"""The ``cloudfoundry-client`` package (PyPI), unchanged, against a real ``tubeway up`` with auth tokens.

It reads ``GET /``, logs in through ``POST /oauth/token`` (the API token as the password or the
client secret), then creates, gets, lists (following ``pagination.next.href`` page after page)
and cancels tasks, as it would against Cloud Controller (API-NOTES section 4).
"""
import pytest
from cloudfoundry_client.client import CloudFoundryClient
from cloudfoundry_client.errors import InvalidStatusCode
from oauth2_client.credentials_manager import OAuthError

from twkit import module_cluster, poll_until

pytestmark = pytest.mark.acceptance

TOKEN = "cf-client-secret"
APP = "cf-client-app"


@pytest.fixture(scope="module")
def server(xprocess, tmp_path_factory):
    with module_cluster(xprocess, tmp_path_factory.mktemp("cfclient"), TOKEN, "--processes", "2",
                        "--enable-commands", "--command-kill-grace", "2") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(server):
    """A client logged in as a user whose password is the API token."""
    cf = CloudFoundryClient(server.url)
    cf.init_with_user_credentials("user", TOKEN)
    return cf


def ended(client, guid):
    task = client.v3.tasks.get(guid)
    return task if task["state"] in ("SUCCEEDED", "FAILED") else None


def test_the_client_finds_the_v3_api_and_the_token_endpoint_in_the_root_document(server, client):
    assert client.info.api_v3_url == f"{server.url}/v3"
    assert client.info.authorization_endpoint == server.url
    assert client.service_information.token_service == f"{server.url}/oauth/token"


def test_create_then_get_a_task_that_succeeds(client):
    task = client.v3.tasks.create(APP, command="echo hello", name="hello-task")
    assert task["name"] == "hello-task" and task["command"] == "echo hello"
    assert task["relationships"]["app"]["data"]["guid"] == APP
    assert task["state"] in ("PENDING", "RUNNING", "SUCCEEDED")
    done = poll_until(lambda: ended(client, task["guid"]))
    assert done["guid"] == task["guid"] and done["sequence_id"] == task["sequence_id"]
    assert done["state"] == "SUCCEEDED" and done["result"]["failure_reason"] is None


def test_a_failing_command_ends_failed_with_its_exit_status(client):
    task = client.v3.tasks.create(APP, command="exit 3", name="fails")
    done = poll_until(lambda: ended(client, task["guid"]))
    assert done["state"] == "FAILED" and done["result"]["failure_reason"] == "Exited with status 3"


def test_listing_follows_next_hrefs_through_every_page(server, client):
    app = "cf-client-paging"
    guids = [client.v3.tasks.create(app, command="true", name=f"page-{n}")["guid"] for n in range(5)]
    pages = []
    original = client.get

    def counting_get(url, *args, **kwargs):  # only to see the pages the client walks; it still does the GET
        pages.append(url)
        return original(url, *args, **kwargs)

    client.get = counting_get
    try:
        listed = list(client.v3.tasks.list(app_guids=app, per_page=2))
    finally:
        del client.get
    assert [task["guid"] for task in listed] == guids
    assert all("command" not in task for task in listed)  # the global list, as Cloud Foundry lists it
    assert len(pages) == 3, pages
    assert pages[1] == f"{server.url}/v3/tasks?app_guids={app}&page=2&per_page=2"
    assert pages[2] == f"{server.url}/v3/tasks?app_guids={app}&page=3&per_page=2"
    named = list(client.v3.tasks.list(names=["page-1", "page-3"], per_page=1))
    assert [task["guid"] for task in named] == [guids[1], guids[3]]


def test_cancel_a_running_sleep_ends_failed_task_was_cancelled(client):
    task = client.v3.tasks.create(APP, command="sleep 30", name="sleeper")
    poll_until(lambda: client.v3.tasks.get(task["guid"])["state"] == "RUNNING" or None, timeout=20)
    cancelled = client.v3.tasks.cancel(task["guid"])
    assert cancelled["guid"] == task["guid"] and cancelled["state"] == "CANCELING"
    done = poll_until(lambda: ended(client, task["guid"]), timeout=20)
    assert done["state"] == "FAILED" and done["result"]["failure_reason"] == "task was cancelled"


def test_the_cancel_link_of_a_task_entity_cancels_it(client):
    task = client.v3.tasks.create(APP, command="sleep 30", name="linked")
    poll_until(lambda: client.v3.tasks.get(task["guid"])["state"] == "RUNNING" or None, timeout=20)
    assert task.cancel()["state"] == "CANCELING"  # the entity's navigable links.cancel (method POST)
    done = poll_until(lambda: ended(client, task["guid"]), timeout=20)
    assert done["result"]["failure_reason"] == "task was cancelled"
    with pytest.raises(InvalidStatusCode) as caught:
        client.v3.tasks.cancel(task["guid"])
    assert caught.value.status_code == 422
    assert caught.value.body["errors"][0]["detail"] == "Task state is FAILED and therefore cannot be canceled"


def test_an_unknown_task_is_404_task_not_found(client):
    with pytest.raises(InvalidStatusCode) as caught:
        client.v3.tasks.get("no-such-task")
    assert caught.value.status_code == 404
    assert caught.value.body == {"errors": [{"detail": "Task not found", "title": "CF-ResourceNotFound",
                                             "code": 10010}]}


def test_a_wrong_token_fails_the_login(server):
    cf = CloudFoundryClient(server.url)
    with pytest.raises(OAuthError) as caught:
        cf.init_with_user_credentials("user", "not-the-token")
    assert caught.value.status_code == 401


def test_client_credentials_grant_with_the_token_as_client_secret(server):
    cf = CloudFoundryClient(server.url, client_id="robot", client_secret=TOKEN)
    cf.init_with_client_credentials()
    task = cf.v3.tasks.create(APP, command="true", name="robot-task")
    assert cf.v3.tasks.get(task["guid"])["name"] == "robot-task"
    wrong = CloudFoundryClient(server.url, client_id="robot", client_secret="wrong")
    with pytest.raises(OAuthError):
        wrong.init_with_client_credentials()
