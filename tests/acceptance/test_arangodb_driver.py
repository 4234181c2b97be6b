"""The real driver, python-arango, against a real Tubeway: the assertions of its own ``tests/test_task.py``.

The driver sends Basic auth (user ``root``, the password checked against the API
tokens) and reaches every route under ``/_db/<name>/``.
"""
import uuid

import pytest

from twkit import module_cluster, poll_until

arango = pytest.importorskip("arango")
from arango.exceptions import TaskCreateError, TaskDeleteError, TaskGetError, TaskListError  # noqa: E402

pytestmark = pytest.mark.acceptance

TOKEN = "driver-secret"
DB_NAME = "driver_db"
TEST_CMD = "require('@arangodb').print(params);"


@pytest.fixture(scope="module")
def server(xprocess, tmp_path_factory):
    """One ``tubeway up`` for the module, with a token and the database ``driver_db``; stopped afterwards."""
    with module_cluster(xprocess, tmp_path_factory.mktemp("arangodb-driver"), TOKEN, "--processes", "1",
                        "--arangodb-databases", DB_NAME) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(server):
    arango_client = arango.ArangoClient(hosts=server.url)
    yield arango_client
    arango_client.close()


@pytest.fixture(scope="module")
def system_db(client):
    return client.db("_system", username="root", password=TOKEN)


@pytest.fixture(scope="module")
def db(client):
    return client.db(DB_NAME, username="root", password=TOKEN)


def task_name():
    return f"test_task_{uuid.uuid4().hex[:8]}"


def task_id():
    return f"test_task_id_{uuid.uuid4().hex[:8]}"


def test_a_fresh_server_lists_no_tasks(system_db, db):
    assert system_db.tasks() == []
    assert db.tasks() == []


def test_list_tasks(client, db):
    made = db.create_task(name=task_name(), command=TEST_CMD, params={"foo": 1}, offset=3600)
    listed = db.tasks()
    assert [task["id"] for task in listed] == [made["id"]]
    for task in listed:
        assert task["database"] == DB_NAME
        assert task["type"] in {"periodic", "timed"}
        assert isinstance(task["id"], str)
        assert isinstance(task["name"], str)
        assert isinstance(task["created"], float)
        assert isinstance(task["command"], str)
    bad_db = client.db("no_such_db", username="root", password=TOKEN)
    with pytest.raises(TaskListError) as error:
        bad_db.tasks()
    assert error.value.error_code == 1228 and error.value.http_code == 404
    assert db.delete_task(made["id"]) is True


def test_get_task(db):
    made = db.create_task(name=task_name(), command=TEST_CMD, offset=3600)
    for task in db.tasks():
        assert db.task(task["id"]) == task
    with pytest.raises(TaskGetError) as error:
        db.task(task_id())
    assert error.value.error_code == 1852 and error.value.http_code == 404
    db.delete_task(made["id"])


def test_create_task(db):
    # A generated id.
    name = task_name()
    new_task = db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, offset=1)
    assert new_task["name"] == name
    assert "print(params)" in new_task["command"]
    assert new_task["type"] == "timed"
    assert new_task["database"] == DB_NAME
    assert isinstance(new_task["created"], float)
    assert isinstance(new_task["id"], str) and new_task["id"].isdigit()
    assert db.task(new_task["id"]) == new_task
    # It runs after its offset, then is gone.
    poll_until(lambda: new_task["id"] not in {task["id"] for task in db.tasks()}, what="the timed task gone")
    with pytest.raises(TaskGetError):
        db.task(new_task["id"])

    # A chosen id.
    name, chosen = task_name(), task_id()
    new_task = db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, offset=1, period=10,
                              task_id=chosen)
    assert new_task["name"] == name
    assert new_task["id"] == chosen
    assert "print(params)" in new_task["command"]
    assert new_task["type"] == "periodic"
    assert new_task["database"] == DB_NAME
    assert isinstance(new_task["created"], float)
    assert db.task(new_task["id"]) == new_task

    # A duplicate id.
    with pytest.raises(TaskCreateError) as error:
        db.create_task(name=name, command=TEST_CMD, params={"foo": 1, "bar": 2}, task_id=chosen)
    assert error.value.error_code == 1851
    db.delete_task(chosen)


def test_create_task_in_system_db(system_db):
    new_task = system_db.create_task(name=task_name(), command=TEST_CMD, period=5, offset=3600)
    assert new_task["database"] == "_system"
    assert system_db.task(new_task["id"]) == new_task
    assert system_db.tasks() == [new_task]
    assert system_db.delete_task(new_task["id"]) is True


def test_bad_tasks_are_refused(db):
    with pytest.raises(TaskCreateError) as error:
        db.create_task(name=task_name(), command="return (")
    assert error.value.error_code == 10 and error.value.http_code == 400
    with pytest.raises(TaskCreateError) as error:
        db.create_task(name=task_name(), command=TEST_CMD, period=-1)
    assert error.value.error_code == 10


def test_delete_task(db):
    chosen = task_id()
    db.create_task(name=task_name(), command=TEST_CMD, params={"foo": 1, "bar": 2}, task_id=chosen, period=10)
    assert db.delete_task(chosen) is True
    with pytest.raises(TaskGetError):
        db.task(chosen)
    with pytest.raises(TaskDeleteError) as error:
        db.delete_task(chosen, ignore_missing=False)
    assert error.value.error_code == 1852
    assert db.delete_task(chosen, ignore_missing=True) is False


def test_a_wrong_password_is_refused(client):
    with pytest.raises(TaskListError) as error:
        client.db(DB_NAME, username="root", password="wrong").tasks()
    assert error.value.http_code == 401
