"""Schedules over real sockets: a broker thread, scripted workers, and the native API in front of it.

Waiting is polling with a deadline; "nothing fired" is checked after the due time
has passed and the broker has turned since (each request is a turn, and every turn
fires what is due), never by sleeping and hoping.
"""
import asyncio
import threading
import time

import pytest
import requests
from tornado.httpserver import HTTPServer

from tubeway.broker.http.app import make_app, server_options
from tubeway.core.client import AsyncBrokerClient, BrokerClient
from tubeway.core.errors import JobNotFound
from tubeway.core.schedule import normalize_schedule
from tubeway.plugins.manager import PluginManager
from brokerkit import BrokerThread, ScriptedWorker, free_port, poll_until

pytestmark = pytest.mark.integration


def add(client, **spec):
    spec.setdefault("job", {"kind": "echo"})
    return client.add_schedule(normalize_schedule(spec))


def runs(client, schedule_id, namespace="default"):
    return client.list_jobs(namespace=namespace, labels={"schedule": schedule_id}, limit=1000)["jobs"]


def passed(moment, worker=None):
    """Wait until the wall clock is past ``moment`` (the broker's clock is the same).

    A ``worker`` keeps answering heartbeats meanwhile; the jobs it got are returned.
    """
    got = []

    def past():
        if worker is not None:
            got.extend(worker.drain())
        return time.time() > moment
    poll_until(past, what=f"time past {moment}")
    return got


def test_a_schedule_fires_on_time_and_its_runs_are_done_by_workers(running, client):
    worker = ScriptedWorker(running.endpoint)
    schedule = add(client, id="tick", period=0.5, offset=0.3, job={"kind": "echo", "payload": "hi"})
    assert schedule["first_run_at"] == pytest.approx(schedule["created_at"] + 0.3)
    first = worker.jobs(1)[0]
    assert first["labels"] == {"schedule": "tick"} and first["payload"] == "hi"
    assert schedule["first_run_at"] <= first["created_at"] < schedule["first_run_at"] + 1.0
    worker.finish(first, result="hi")
    second = worker.jobs(1)[0]
    assert second["created_at"] >= schedule["first_run_at"] + 0.5
    worker.finish(second, result="hi")
    poll_until(lambda: [r["state"] for r in runs(client, "tick")][:2] == ["done", "done"])
    worker.close()


def test_an_id_label_is_set_on_every_run_and_survives_in_the_record(running, client):
    worker = ScriptedWorker(running.endpoint)
    schedule = add(client, id="tagged", period=None, id_label="task_id", job={"kind": "echo", "labels": {"a": "b"}})
    assert schedule["id_label"] == "task_id" and client.get_schedule("tagged")["id_label"] == "task_id"
    run = worker.jobs(1)[0]
    assert run["labels"] == {"a": "b", "schedule": "tagged", "task_id": "tagged"}
    worker.finish(run, result=None)
    worker.close()


def test_runs_never_overlap_and_overrun_slots_make_one_run(running, client):
    worker = ScriptedWorker(running.endpoint)
    add(client, id="s", period=0.2)
    held = worker.jobs(1)[0]
    assert passed(held["created_at"] + 1.0, worker) == []  # five slots pass while the run is held
    assert client.get_schedule("s")["running"] == held["id"]
    assert [r["id"] for r in runs(client, "s")] == [held["id"]]
    worker.finish(held)
    again = worker.jobs(1)[0]
    schedule = client.get_schedule("s")
    assert schedule["running"] == again["id"] and schedule["runs"] == 2
    assert again["created_at"] < schedule["next_run_at"] <= again["created_at"] + 0.2
    worker.close()


def test_a_deleted_schedule_never_fires_again_even_when_due(running, client):
    worker = ScriptedWorker(running.endpoint)
    add(client, id="s", period=0.2)
    held = worker.jobs(1)[0]
    assert passed(held["created_at"] + 0.5, worker) == []  # its next run is due, waiting for this one to end
    assert client.delete_schedule("s")["id"] == "s"
    worker.finish(held)
    poll_until(lambda: client.get(held["id"])["state"] == "done")
    assert passed(time.time() + 0.5, worker) == []
    assert [r["id"] for r in runs(client, "s")] == [held["id"]]
    with pytest.raises(JobNotFound):
        client.get_schedule("s")
    worker.close()


def test_a_run_missed_while_the_broker_was_down_fires_once_on_start(db_url):
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            add(client, id="s", period=1.0)
            poll_until(lambda: runs(client, "s"), what="the first run")
            [first] = runs(client, "s")
            client.delete(first["id"])  # frees the schedule; its next slot is one period after the first
            next_at = client.get_schedule("s")["next_run_at"]
    finally:
        broker.stop()
    passed(next_at + 3.0)  # three slots missed while down
    again = BrokerThread(db_url, broker=broker.endpoint).start()
    try:
        with BrokerClient(again.endpoint, timeout=5) as client:
            [run] = poll_until(lambda: runs(client, "s"), what="the missed run")
            schedule = client.get_schedule("s")
            assert schedule["runs"] == 2 and schedule["running"] == run["id"]
            assert run["created_at"] > next_at + 3.0
            assert run["created_at"] < schedule["next_run_at"] <= run["created_at"] + 1.0
    finally:
        again.stop()


def test_generated_ids_come_from_a_counter_that_survives_a_restart(db_url):
    broker = BrokerThread(db_url).start()
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            ids = [add(client, offset=3600, period=60)["id"] for _ in range(2)]
            client.delete_schedule(ids[1])
    finally:
        broker.stop()
    again = BrokerThread(db_url, broker=broker.endpoint).start()
    try:
        with BrokerClient(again.endpoint, timeout=5) as client:
            assert ids == ["1", "2"]
            assert add(client, offset=3600, period=60)["id"] == "3"
            assert [s["id"] for s in client.list_schedules()["schedules"]] == ["1", "3"]
    finally:
        again.stop()


def test_each_schedule_keeps_its_newest_ended_runs(db_url):
    broker = BrokerThread(db_url, schedule_keep_runs=3).start()
    worker = ScriptedWorker(broker.endpoint)
    try:
        with BrokerClient(broker.endpoint, timeout=5) as client:
            add(client, id="s", period=0.05)
            finished = []
            while len(finished) < 8:
                job = worker.jobs(1)[0]
                worker.finish(job)
                finished.append(job["id"])
            poll_until(lambda: client.get_schedule("s")["runs"] >= 9, what="the ninth run")
            kept = [r["id"] for r in runs(client, "s") if r["state"] == "done"]
            assert kept == finished[-3:]  # the ninth run, not ended, is the fourth job left
            assert len(runs(client, "s")) == 4
    finally:
        worker.close()
        broker.stop()


def test_schedules_and_their_runs_appear_in_the_metrics(running, client):
    add(client, id="m", period=60, job={"kind": "echo", "queue": "metered"})
    poll_until(lambda: runs(client, "m"))
    text = client.metrics()["text"]
    assert 'tubeway_schedules{namespace="default",queue="metered"} 1.0' in text
    assert 'tubeway_schedule_runs_total{namespace="default",queue="metered"} 1.0' in text


# -- the native API in front of a real broker -----------------------------------------------
class NativeApi:
    """The HTTP front end on a free port, in a thread with its own event loop."""

    def __init__(self, settings):
        self.settings = settings
        self.url = f"http://127.0.0.1:{free_port()}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.ready = threading.Event()

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        client = AsyncBrokerClient(self.settings.broker, timeout=5)
        server = HTTPServer(make_app(self.settings, client, PluginManager.load(self.settings)),
                            **server_options(self.settings))
        server.listen(int(self.url.rsplit(":", 1)[1]), "127.0.0.1")
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.stop()
            client.close()
            self.loop.close()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __call__(self, method, path, **kwargs):
        return requests.request(method, self.url + path, timeout=10, **kwargs)


@pytest.fixture
def api(running):
    with NativeApi(running.settings) as native:
        yield native


def test_native_api_create_read_list_delete(api):
    created = api("POST", "/api/v1/schedules", json={"id": "nightly", "period": 60, "offset": 3600,
                                                      "policy": "after_end", "job": {"kind": "echo", "queue": "q"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["id"], body["namespace"], body["queue"], body["period"], body["offset"], body["policy"]) == \
        ("nightly", "default", "q", 60.0, 3600.0, "after_end")
    assert api("GET", "/api/v1/schedules/nightly").json() == body
    assert api("GET", "/api/v1/schedules/nightly/").json() == body
    generated = api("POST", "/api/v1/schedules/", json={"period": None, "offset": 3600,
                                                       "job": {"kind": "echo", "namespace": "other"}}).json()
    assert generated["id"].isdigit() and generated["period"] is None
    assert api("GET", f"/api/v1/schedules/{generated['id']}", params={"namespace": "other"}).status_code == 200
    assert api("GET", f"/api/v1/schedules/{generated['id']}").status_code == 404  # not in "default"
    listed = api("GET", "/api/v1/schedules").json()
    assert [s["id"] for s in listed["schedules"]] == ["nightly", generated["id"]] and listed["next_cursor"] is None
    page = api("GET", "/api/v1/schedules", params={"namespace": "other", "limit": 1}).json()
    assert [s["id"] for s in page["schedules"]] == [generated["id"]]
    assert api("GET", "/api/v1/schedules", params={"queue": "q"}).json()["schedules"] == [body]
    assert api("DELETE", "/api/v1/schedules/nightly").json() == body
    assert api("GET", "/api/v1/schedules/nightly").status_code == 404
    assert api("DELETE", "/api/v1/schedules/nightly").status_code == 404


def test_native_api_runs_are_jobs_listed_by_the_schedule_label(api, running):
    worker = ScriptedWorker(running.endpoint)
    api("POST", "/api/v1/schedules", json={"id": "r", "period": 60, "job": {"kind": "echo", "payload": 1}})
    worker.finish(worker.jobs(1)[0], result=1)
    done = poll_until(lambda: api("GET", "/api/v1/jobs", params={"label": "schedule:r", "state": "done"})
                      .json()["jobs"])
    assert done[0]["result"] == 1 and api("GET", f"/api/v1/jobs/{done[0]['id']}").status_code == 200
    worker.close()


@pytest.mark.parametrize("body, field", [
    ({"period": 5}, "job"),
    ({"job": {"kind": "nope"}, "period": 5}, "job.kind"),
    ({"job": {"kind": "echo"}, "period": 0}, "period"),
    ({"job": {"kind": "echo"}, "period": "5"}, "period"),
    ({"job": {"kind": "echo", "delay": 5}, "period": 5}, "job.delay"),
    ({"job": {"kind": "echo"}, "policy": "often"}, "policy"),
    ({"job": {"kind": "echo"}, "id": ""}, "id"),
    ({"job": {"kind": "echo"}, "bogus": 1}, "bogus"),
    ({"job": {"kind": "echo"}, "id": "a\u0000"}, "id"),  # PostgreSQL text cannot hold NUL
    ({"job": {"kind": "echo", "queue": "a\u0000"}}, "job.queue"),
    ({"job": {"kind": "echo", "labels": {"k": "\u0000"}}}, "job.labels"),
])
def test_native_api_bad_schedules_are_400_naming_the_field(api, body, field):
    response = api("POST", "/api/v1/schedules", json=body)
    assert response.status_code == 400 and response.json()["field"] == field


def test_native_api_duplicate_id_is_409_and_bad_queries_are_4xx(api):
    spec = {"id": "d", "period": 60, "offset": 3600, "job": {"kind": "echo"}}
    assert api("POST", "/api/v1/schedules", json=spec).status_code == 201
    duplicate = api("POST", "/api/v1/schedules", json=spec)
    assert duplicate.status_code == 409 and "error" in duplicate.json()
    for body in (b"", b"{", b"[]", b"5", b'"x"'):
        assert api("POST", "/api/v1/schedules", data=body).status_code == 400
    for params in ({"limit": "0"}, {"limit": "x"}, {"cursor": "abc"}, {"namespace": "n" * 201}):
        assert api("GET", "/api/v1/schedules", params=params).status_code == 400, params
    assert api("GET", "/api/v1/schedules/" + "x" * 300).status_code == 404
    assert api("GET", "/api/v1/schedules/d", params={"namespace": "n" * 201}).status_code == 400
    assert api("GET", "/api/v1/schedules/d%00").status_code == 400
    # Tornado strips control characters from query arguments: namespace "a", where "d" is not
    assert api("DELETE", "/api/v1/schedules/d", params={"namespace": "a\u0000"}).status_code == 404
    assert api("PUT", "/api/v1/schedules/d", json=spec).status_code == 405
