"""The native API under /api/v1, against the in-memory broker."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import HttpCase  # noqa: E402

from tubeway.core.errors import BrokerUnavailable  # noqa: E402


class SubmitTest(HttpCase):
    def test_one_job_is_stored_and_answered_201_with_its_id(self):
        status, body = self.call_json("POST", "/api/v1/jobs", {"kind": "noop", "queue": "q", "payload": {"a": 1}})
        self.assertEqual(status, 201)
        job = self.broker.jobs[body["id"]]
        self.assertEqual((job["namespace"], job["queue"], job["payload"]), ("default", "q", {"a": 1}))
        self.assertEqual(self.broker.commands(), ["SUBMIT"])

    def test_array_is_one_submit_and_answers_ids_in_order(self):
        jobs = [{"kind": "noop", "payload": n} for n in range(3)]
        status, body = self.call_json("POST", "/api/v1/jobs", jobs)
        self.assertEqual(status, 201)
        self.assertEqual([self.broker.jobs[i]["payload"] for i in body["ids"]], [0, 1, 2])
        self.assertEqual(self.broker.commands(), ["SUBMIT"])

    def test_every_spec_field_reaches_the_broker_normalized(self):
        spec = {"kind": "noop", "queue": "q", "namespace": "ns", "payload": [1], "priority": -5, "delay": 30,
                "attempts": 3, "backoff": 2, "timeout": 9, "result_ttl": 60,
                "callback_url": "http://example.test/cb", "unique_key": "u1", "labels": {"team": "a"}}
        status, body = self.call_json("POST", "/api/v1/jobs", spec)
        self.assertEqual(status, 201)
        job = self.broker.jobs[body["id"]]
        self.assertEqual(job["state"], "delayed")
        self.assertEqual((job["max_attempts"], job["backoff"]["type"], job["labels"]), (3, "fixed", {"team": "a"}))

    def test_invalid_job_in_array_stores_nothing_and_names_index_and_field(self):
        jobs = [{"kind": "noop"}, {"kind": "noop", "priority": "high"}]
        status, body = self.call_json("POST", "/api/v1/jobs", jobs)
        self.assertEqual(status, 400)
        self.assertEqual((body["index"], body["field"]), (1, "priority"))
        self.assertIn("priority", body["error"])
        self.assertEqual(self.broker.calls, [])

    def test_invalid_single_job_names_the_field_without_index(self):
        status, body = self.call_json("POST", "/api/v1/jobs", {"kind": "noop", "bogus": 1})
        self.assertEqual(status, 400)
        self.assertEqual(body["field"], "bogus")
        self.assertNotIn("index", body)

    def test_unknown_kind_is_400(self):
        status, body = self.call_json("POST", "/api/v1/jobs", {"kind": "nope"})
        self.assertEqual((status, body["field"]), (400, "kind"))

    def test_plugin_validation_refuses_a_job(self):
        status, body = self.call_json("POST", "/api/v1/jobs", [{"kind": "noop"}, {"kind": "noop", "payload": {"refuse": True}}])
        self.assertEqual((status, body["index"], body["field"]), (400, 1, "payload"))
        self.assertEqual(self.broker.calls, [])

    def test_empty_array_and_non_object_bodies_are_400(self):
        for body in ([], 5, "job", None, [1]):
            status, reply = self.call_json("POST", "/api/v1/jobs", body if body is not None else b"null")
            self.assertEqual(status, 400, body)
            self.assertIn("error", reply)

    def test_broker_unavailable_is_503(self):
        self.broker.failure = BrokerUnavailable("no reply from the broker")
        status, body = self.call_json("POST", "/api/v1/jobs", {"kind": "noop"})
        self.assertEqual((status, body["error"]), (503, "no reply from the broker"))


class ReadTest(HttpCase):
    def test_get_returns_the_full_record(self):
        job = self.broker.add(payload={"x": 1})
        status, body = self.call_json("GET", f"/api/v1/jobs/{job['id']}")
        self.assertEqual((status, body["id"], body["payload"], body["state"]), (200, job["id"], {"x": 1}, "queued"))

    def test_get_unknown_is_404_native_format(self):
        status, body = self.call_json("GET", "/api/v1/jobs/nope")
        self.assertEqual(status, 404)
        self.assertIn("nope", body["error"])

    def test_overlong_id_is_404_without_asking_the_broker(self):
        status, _ = self.call_json("GET", "/api/v1/jobs/" + "x" * 500)
        self.assertEqual(status, 404)
        self.assertEqual(self.broker.calls, [])

    def test_queues(self):
        self.broker.add(queue="a")
        self.broker.add(queue="a", state="failed")
        status, body = self.call_json("GET", "/api/v1/queues")
        self.assertEqual(status, 200)
        self.assertEqual(body["queues"], [{"namespace": "default", "queue": "a", "counts": {"queued": 1, "failed": 1}}])


class ListTest(HttpCase):
    def test_filters_reach_the_broker(self):
        self.call_json("GET", "/api/v1/jobs?namespace=n&queue=q&kind=echo&state=failed&label=a:1&label=b:x:y"
                              "&limit=5&cursor=c9")
        name, body = self.broker.calls[0]
        self.assertEqual(name, "LIST")
        self.assertEqual(body, {"namespace": "n", "queue": None, "queues": ["q"], "kind": "echo", "state": None,
                                "states": ["failed"], "ids": None, "names": None, "selector": None,
                                "labels": {"a": "1", "b": "x:y"}, "limit": 5, "cursor": "c9",
                                "order": "created", "offset": 0, "total": False})

    def test_several_values_a_selector_an_order_and_an_offset_reach_the_broker(self):
        self.call_json("GET", "/api/v1/jobs?state=failed,done&id=a&id=b&name=n&selector=env%3Dprod,!old"
                              "&order=-updated&offset=20&total=true")
        body = self.broker.calls[0][1]
        self.assertEqual((body["states"], body["ids"], body["names"], body["order"], body["offset"], body["total"]),
                         (["failed", "done"], ["a", "b"], ["n"], "-updated", 20, True))
        self.assertEqual(body["selector"], [{"key": "env", "op": "=", "values": ["prod"]},
                                            {"key": "old", "op": "!exists", "values": []}])

    def test_a_bad_selector_or_order_is_400(self):
        for query in ("selector=a%20in%20(b", "order=sideways", "offset=-1"):
            status, body = self.call_json("GET", f"/api/v1/jobs?{query}")
            self.assertEqual(status, 400, query)
        self.assertEqual(self.broker.calls, [])

    def test_defaults(self):
        self.call_json("GET", "/api/v1/jobs")
        self.assertEqual(self.broker.calls[0][1], {"namespace": None, "queue": None, "state": None, "labels": {},
                                                   "limit": 100, "cursor": None, "kind": None, "states": None,
                                                   "ids": None, "names": None, "queues": None, "selector": None,
                                                   "order": "created", "offset": 0, "total": False})

    def test_pages_with_next_cursor(self):
        for n in range(3):
            self.broker.add(payload=n, labels={"team": "a" if n else "b"})
        status, body = self.call_json("GET", "/api/v1/jobs?label=team:a&limit=1")
        self.assertEqual((status, [j["payload"] for j in body["jobs"]]), (200, [1]))
        status, body = self.call_json("GET", f"/api/v1/jobs?label=team:a&limit=1&cursor={body['next_cursor']}")
        self.assertEqual(([j["payload"] for j in body["jobs"]], body["next_cursor"]), ([2], None))

    def test_bad_state_limit_and_label_are_400(self):
        for query in ("state=lost", "limit=0", "limit=1001", "limit=x", "limit=-1", "label=nocolon",
                      "label=:v", "label=a:1&label=a:2"):
            status, body = self.call_json("GET", f"/api/v1/jobs?{query}")
            self.assertEqual(status, 400, query)
            self.assertIn("error", body)
        self.assertEqual(self.broker.calls, [])


class ActionTest(HttpCase):
    def test_retry_a_failed_job(self):
        job = self.broker.add(state="failed")
        status, body = self.call_json("POST", f"/api/v1/jobs/{job['id']}/retry")
        self.assertEqual((status, body["state"]), (200, "queued"))

    def test_retry_a_queued_job_is_409(self):
        job = self.broker.add()
        status, body = self.call_json("POST", f"/api/v1/jobs/{job['id']}/retry")
        self.assertEqual(status, 409)
        self.assertIn("retried", body["error"])

    def test_cancel_then_cancel_again(self):
        job = self.broker.add()
        self.assertEqual(self.call_json("POST", f"/api/v1/jobs/{job['id']}/cancel")[1]["state"], "cancelled")
        self.assertEqual(self.call_json("POST", f"/api/v1/jobs/{job['id']}/cancel")[0], 409)

    def test_actions_on_unknown_jobs_are_404(self):
        for action in ("retry", "cancel"):
            self.assertEqual(self.call_json("POST", f"/api/v1/jobs/nope/{action}")[0], 404)

    def test_other_action_or_method_is_not_routed(self):
        job = self.broker.add()
        self.assertEqual(self.call_json("POST", f"/api/v1/jobs/{job['id']}/explode")[0], 404)
        status, body = self.call_json("DELETE", f"/api/v1/jobs/{job['id']}")
        self.assertEqual((status, body), (405, {"error": "method not allowed"}))
