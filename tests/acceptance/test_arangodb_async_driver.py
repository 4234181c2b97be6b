"""The real async driver, python-arango-async, against a real Tubeway: the assertions of its ``tests/test_task.py``.

The driver authenticates with Basic (user ``root``, the password checked against the API tokens),
reaches every route under ``/_db/<name>/`` and creates a task with a chosen id by
``PUT /_api/tasks/<id>`` (API-NOTES section 3). Each test runs its coroutine with
``asyncio.run`` and opens its own client inside it, so no session outlives its event loop.
"""
import asyncio
import uuid

import pytest

from twkit import module_cluster, poll_until

arangoasync = pytest.importorskip("arangoasync")
from arangoasync.auth import Auth  # noqa: E402
from arangoasync.client import ArangoClient  # noqa: E402
from arangoasync.exceptions import TaskCreateError, TaskDeleteError, TaskGetError, TaskListError  # noqa: E402

pytestmark = [pytest.mark.acceptance,
              # The driver (1.2.7) still hands aiohttp a BasicAuth, which aiohttp deprecates.
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter).*:DeprecationWarning")]

TOKEN = "async-driver-secret"
TEST_CMD = 'require("@arangodb").print(params);'


@pytest.fixture(scope="module")
def server(xprocess, tmp_path_factory):
    """One ``tubeway up`` for the module, with an auth token; stopped afterwards."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("arangodb-async-driver"), TOKEN,
                        "--processes", "1") as cluster:
        yield cluster


def with_db(server, work, database="_system", username="root", password=TOKEN):
    """Run ``await work(db)`` on a fresh event loop, ``db`` being the driver's handle on ``database``."""
    async def main():
        async with ArangoClient(hosts=server.url) as client:
            db = await client.db(database, auth_method="basic", auth=Auth(username=username, password=password),
                                 verify=False)
            return await work(db)
    return asyncio.run(main())


@pytest.fixture(autouse=True)
def no_test_tasks_left(server):
    """Delete the tasks a test left in ``_system`` (as the driver's own teardown does), so lists start empty."""
    yield

    async def clean(db):
        for task in await db.tasks():
            if task["name"].startswith("test_task"):
                await db.delete_task(task["id"], ignore_missing=True)
    with_db(server, clean)


def task_name():
    return f"test_task_{uuid.uuid4().hex[:8]}"


def task_id():
    return f"test_task_id_{uuid.uuid4().hex[:8]}"


def test_a_bad_database_with_a_bad_user_refuses_every_task_call(server):
    async def work(bad_db):
        with pytest.raises(TaskCreateError) as create:
            await bad_db.create_task(command=TEST_CMD)
        with pytest.raises(TaskGetError) as get:
            await bad_db.task("non_existent_task_id")
        with pytest.raises(TaskListError) as listing:
            await bad_db.tasks()
        with pytest.raises(TaskDeleteError) as delete:
            await bad_db.delete_task("non_existent_task_id")
        return [error.value.http_code for error in (create, get, listing, delete)]

    codes = with_db(server, work, database=f"test_database_{uuid.uuid4().hex[:8]}", username="bad_user",
                    password="bad_password")
    # Auth is checked before the database (ArangoDB answers 401 as well for a bad password).
    assert codes == [401] * 4


def test_a_bad_database_with_good_credentials_is_not_found(server):
    async def work(bad_db):
        with pytest.raises(TaskListError) as listing:
            await bad_db.tasks()
        with pytest.raises(TaskCreateError) as create:
            await bad_db.create_task(command=TEST_CMD)
        return [(error.value.http_code, error.value.error_code) for error in (listing, create)]

    assert with_db(server, work, database=f"test_database_{uuid.uuid4().hex[:8]}") == [(404, 1228)] * 2


def test_create_with_a_generated_id_get_and_delete(server):
    name = task_name()

    async def work(sys_db):
        new_task = await sys_db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, offset=1)
        fetched = await sys_db.task(new_task["id"])
        deleted = await sys_db.delete_task(new_task["id"])
        return new_task, fetched, deleted

    new_task, fetched, deleted = with_db(server, work)
    assert new_task["name"] == name
    assert isinstance(new_task["id"], str) and new_task["id"].isdigit()
    assert new_task["type"] == "timed" and new_task["database"] == "_system"
    # The driver compares the create reply and a later GET raw.
    assert fetched == new_task
    assert deleted is True


def test_create_with_a_chosen_id_duplicate_missing_list_and_delete(server):
    name, chosen = task_name(), task_id()

    async def work(sys_db):
        new_task = await sys_db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, offset=1,
                                            period=10, task_id=chosen)
        assert new_task["name"] == name
        assert new_task["id"] == chosen
        assert new_task["type"] == "periodic" and new_task["period"] == 10
        assert await sys_db.task(chosen) == new_task

        with pytest.raises(TaskCreateError) as duplicate:
            await sys_db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, task_id=chosen)
        assert duplicate.value.http_code == 409 and duplicate.value.error_code == 1851

        with pytest.raises(TaskGetError) as missing:
            await sys_db.task(task_id())
        assert missing.value.http_code == 404 and missing.value.error_code == 1852

        tasks = await sys_db.tasks()
        assert len(tasks) == 1 and tasks[0] == new_task

        assert await sys_db.delete_task(chosen) is True
        assert await sys_db.delete_task(chosen, ignore_missing=True) is False
        with pytest.raises(TaskDeleteError) as gone:
            await sys_db.delete_task(chosen)
        assert gone.value.http_code == 404 and gone.value.error_code == 1852
        return await sys_db.tasks()

    assert with_db(server, work) == []


def test_a_timed_task_made_by_the_driver_runs_and_is_then_gone(server):
    name = task_name()

    async def create(sys_db):
        return await sys_db.create_task(name=name, command="return params.foo + params.bar;",
                                        params={"foo": 1, "bar": 2}, offset=0.5)

    async def ids(sys_db):
        return {task["id"] for task in await sys_db.tasks()}

    new_task = with_db(server, create)
    poll_until(lambda: new_task["id"] not in with_db(server, ids), what="the timed task run and removed")

    def ended_runs():
        response = server.get("/api/v1/jobs", params={"namespace": "arangodb", "label": f"task_id:{new_task['id']}"})
        assert response.status_code == 200, response.text
        jobs = response.json()["jobs"]
        return jobs if jobs and all(job["state"] in ("done", "failed") for job in jobs) else None

    assert [(job["state"], job["result"]) for job in poll_until(ended_runs, what="its run ended")] == [("done", 3)]
