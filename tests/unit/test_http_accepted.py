"""The Accepted jobs API (API-NOTES section 2), against the in-memory broker."""
import pathlib
import sys

import orjson

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import HttpCase  # noqa: E402

JOB_KEYS = {"id", "queue", "status", "priority", "params", "result", "error"}
NUMERIC_HEADERS = ("X-Accepted-Priority", "X-Accepted-Result-TTL", "X-Accepted-Job-Timeout", "X-Accepted-Delay")


class PostJobTest(HttpCase):
    def test_post_answers_202_location_and_the_job(self):
        response = self.call("POST", "/jobs", {"queue": "q", "params": {"p": 1}})
        self.assertEqual(response.code, 202)
        body = orjson.loads(response.body)
        self.assertEqual(set(body), JOB_KEYS)
        self.assertEqual(response.headers["Location"], f"/jobs/{body['id']}")
        self.assertEqual((body["queue"], body["status"], body["priority"], body["params"]), ("q", "queued", 1, {"p": 1}))
        job = self.broker.jobs[body["id"]]
        self.assertEqual((job["namespace"], job["kind"], job["payload"]), ("accepted", "external", {"p": 1}))

    def test_data_is_the_older_name_of_params(self):
        status, body = self.call_json("POST", "/jobs", {"queue": "q", "data": [1, 2]})
        self.assertEqual((status, body["params"]), (202, [1, 2]))

    def test_params_may_be_absent_or_any_json(self):
        for params in (None, 3, "s", [], {"deep": {"er": [1]}}):
            status, body = self.call_json("POST", "/jobs", {"queue": "q", "params": params})
            self.assertEqual((status, body["params"]), (202, params))

    def test_queue_missing_or_not_a_non_empty_string_is_400(self):
        for body in ({}, {"queue": ""}, {"queue": 5}, {"queue": None}, {"queue": ["q"]}, [], "q", b"null"):
            status, reply = self.call_json("POST", "/jobs", body)
            self.assertEqual(status, 400, body)
            self.assertEqual(set(reply), {"error"})
        self.assertEqual(self.broker.calls, [])

    def test_headers_set_priority_ttl_callback_timeout_delay(self):
        headers = {"X-Accepted-Priority": "3", "X-Accepted-Result-TTL": "60", "X-Accepted-Job-Timeout": "30",
                   "X-Accepted-Delay": "10", "X-Accepted-Callback-URL": "http://example.test/cb"}
        status, body = self.call_json("POST", "/jobs", {"queue": "q"}, headers)
        self.assertEqual((status, body["priority"], body["status"]), (202, 3, "delayed"))
        job = self.broker.jobs[body["id"]]
        self.assertEqual((job["priority"], job["result_ttl"], job["timeout"], job["callback_url"]),
                         (3, 60, 30, "http://example.test/cb"))
        self.assertIsNotNone(job["run_at"])

    def test_zero_delay_is_queued_and_priority_zero_is_kept(self):
        status, body = self.call_json("POST", "/jobs", {"queue": "q"}, {"X-Accepted-Delay": "0", "X-Accepted-Priority": "0"})
        self.assertEqual((status, body["status"], body["priority"]), (202, "queued", 0))

    def test_bad_numeric_header_is_400_naming_it(self):
        for header in NUMERIC_HEADERS:
            for value in ("-1", "1.5", "x", "", " ", "1e3", "0x10", "99999999999999999999999", "²"):
                status, body = self.call_json("POST", "/jobs", {"queue": "q"}, {header: value})
                self.assertEqual(status, 400, (header, value))
                self.assertIn(header, body["error"])
        self.assertEqual(self.broker.calls, [])

    def test_priority_above_three_is_400(self):
        status, body = self.call_json("POST", "/jobs", {"queue": "q"}, {"X-Accepted-Priority": "4"})
        self.assertEqual(status, 400)
        self.assertIn("X-Accepted-Priority", body["error"])

    def test_bad_callback_url_is_400_naming_the_header(self):
        for url in ("ftp://x", "nope", ""):
            status, body = self.call_json("POST", "/jobs", {"queue": "q"}, {"X-Accepted-Callback-URL": url})
            self.assertEqual(status, 400, url)
            self.assertIn("X-Accepted-Callback-URL", body["error"])

    def test_overlong_queue_is_400(self):
        status, body = self.call_json("POST", "/jobs", {"queue": "q" * 300})
        self.assertEqual(status, 400)
        self.assertIn("queue", body["error"])


class GetJobTest(HttpCase):
    def test_get_shows_the_accepted_view(self):
        job = self.broker.add(namespace="accepted", kind="external", queue="q", payload={"p": 1}, priority=2)
        status, body = self.call_json("GET", f"/jobs/{job['id']}")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"id": job["id"], "queue": "q", "status": "queued", "priority": 2,
                                "params": {"p": 1}, "result": None, "error": None})
        self.assertEqual(self.broker.calls[-1], ("GET", {"id": job["id"], "namespace": "accepted"}))

    def test_unknown_or_other_namespace_is_404(self):
        native = self.broker.add()
        for job_id in ("nope", native["id"]):
            status, body = self.call_json("GET", f"/jobs/{job_id}")
            self.assertEqual(status, 404)
            self.assertEqual(set(body), {"error"})

    def test_wait_result_header_long_polls(self):
        job = self.broker.add(namespace="accepted", kind="external")
        status, _ = self.call_json("GET", f"/jobs/{job['id']}", headers={"X-Accepted-Wait-Result": "5"})
        self.assertEqual(status, 200)
        self.assertEqual(self.broker.calls[-1], ("WAIT", {"id": job["id"], "timeout": 5, "namespace": "accepted"}))

    def test_bad_wait_result_is_400(self):
        job = self.broker.add(namespace="accepted", kind="external")
        for value in ("-1", "soon", "2.5"):
            status, body = self.call_json("GET", f"/jobs/{job['id']}", headers={"X-Accepted-Wait-Result": value})
            self.assertEqual(status, 400)
            self.assertIn("X-Accepted-Wait-Result", body["error"])


class WantJobTest(HttpCase):
    def submit(self, queue, **headers):
        return self.call_json("POST", "/jobs", {"queue": queue, "params": queue}, headers)[1]["id"]

    def test_no_job_is_204_without_body(self):
        response = self.call("POST", "/want_job", b"")
        self.assertEqual((response.code, response.body), (204, b""))

    def test_takes_by_priority_then_fifo_and_marks_running(self):
        first, urgent, second = self.submit("a"), self.submit("b", **{"X-Accepted-Priority": "0"}), self.submit("a")
        taken = [self.call_json("POST", "/want_job")[1]["id"] for _ in range(3)]
        self.assertEqual(taken, [urgent, first, second])
        self.assertEqual(self.call_json("GET", f"/jobs/{first}")[1]["status"], "running")

    def test_default_lease_is_the_setting_and_block_is_zero(self):
        self.call_json("POST", "/want_job")
        self.assertEqual(self.broker.calls[-1], ("TAKE", {"namespace": "accepted", "kinds": ["external"], "queues": None, "lease": 300,
                                                          "block": 0}))

    def test_headers_and_query_give_block_and_lease(self):
        self.call_json("POST", "/want_job", headers={"X-Accepted-Block-For": "2", "X-Accepted-Timeout": "60"})
        self.assertEqual(self.broker.calls[-1][1], {"namespace": "accepted", "kinds": ["external"], "queues": None, "lease": 60, "block": 2})
        self.call_json("POST", "/want_job?block=3&timeout=70")
        self.assertEqual(self.broker.calls[-1][1], {"namespace": "accepted", "kinds": ["external"], "queues": None, "lease": 70, "block": 3})
        self.call_json("POST", "/want_job?block=3&timeout=70", headers={"X-Accepted-Block-For": "1"})
        self.assertEqual(self.broker.calls[-1][1]["block"], 1)

    def test_queue_restriction_from_body_or_query(self):
        self.submit("a")
        b = self.submit("b")
        status, body = self.call_json("POST", "/want_job", {"queue": "b"})
        self.assertEqual((status, body["id"]), (200, b))
        self.call_json("POST", "/want_job", {"queue": ["x", "y"]})
        self.assertEqual(self.broker.calls[-1][1]["queues"], ["x", "y"])
        self.call_json("POST", "/want_job?queue=x&queue=z")
        self.assertEqual(self.broker.calls[-1][1]["queues"], ["x", "z"])
        self.call_json("POST", "/want_job?queue=z", {"queue": "x"})
        self.assertEqual(self.broker.calls[-1][1]["queues"], ["x", "z"])

    def test_bad_queue_restriction_or_numbers_are_400(self):
        for body in ([], "a", {"queue": 5}, {"queue": [""]}, {"queue": [1]}, {"queue": {}}, b"{"):
            status, reply = self.call_json("POST", "/want_job", body)
            self.assertEqual((status, set(reply)), (400, {"error"}), body)
        for headers in ({"X-Accepted-Block-For": "-1"}, {"X-Accepted-Timeout": "x"}):
            status, reply = self.call_json("POST", "/want_job", headers=headers)
            self.assertEqual(status, 400)
            self.assertIn(next(iter(headers)), reply["error"])
        for query in ("block=x", "timeout=-5"):
            status, reply = self.call_json("POST", f"/want_job?{query}")
            self.assertEqual(status, 400)
            self.assertIn(query.split("=")[0], reply["error"])
        self.assertEqual(self.broker.calls, [])


class UpdateDeleteTest(HttpCase):
    def running_job(self):
        self.call_json("POST", "/jobs", {"queue": "q", "params": 1})
        return self.call_json("POST", "/want_job")[1]["id"]

    def test_done_ends_the_job_with_its_result(self):
        job_id = self.running_job()
        status, body = self.call_json("PUT", f"/jobs/{job_id}", {"status": "done", "result": "bar"})
        self.assertEqual((status, body["status"], body["result"]), (200, "done", "bar"))

    def test_failed_keeps_result_and_sets_error(self):
        job_id = self.running_job()
        status, body = self.call_json("PUT", f"/jobs/{job_id}", {"status": "failed", "result": {"why": "x"}})
        self.assertEqual((status, body["status"], body["result"], body["error"]), (200, "failed", {"why": "x"},
                                                                                   "failed by worker"))
        job_id = self.running_job()
        body = self.call_json("PUT", f"/jobs/{job_id}", {"status": "failed", "result": "disk full"})[1]
        self.assertEqual((body["result"], body["error"]), ("disk full", "disk full"))

    def test_running_extends_the_lease_given_by_the_timeout_header(self):
        job_id = self.running_job()
        status, body = self.call_json("PUT", f"/jobs/{job_id}", {"status": "running"}, {"X-Accepted-Timeout": "90"})
        self.assertEqual((status, body["status"]), (200, "running"))
        self.assertEqual(self.broker.calls[-1][1], {"id": job_id, "state": "running", "result": None, "error": None,
                                                    "lease": 90, "namespace": "accepted"})

    def test_update_of_an_ended_job_is_409(self):
        job_id = self.running_job()
        self.call_json("PUT", f"/jobs/{job_id}", {"status": "done"})
        status, body = self.call_json("PUT", f"/jobs/{job_id}", {"status": "failed"})
        self.assertEqual((status, set(body)), (409, {"error"}))

    def test_bad_update_bodies_are_400(self):
        job_id = self.running_job()
        for body in ({"status": "finished"}, {}, {"status": None}, [], b"", b"[", {"status": ["done"]}):
            status, reply = self.call_json("PUT", f"/jobs/{job_id}", body)
            self.assertEqual((status, set(reply)), (400, {"error"}), body)
        status, reply = self.call_json("PUT", f"/jobs/{job_id}", {"status": "done"}, {"X-Accepted-Timeout": "-3"})
        self.assertEqual(status, 400)

    def test_update_unknown_is_404(self):
        self.assertEqual(self.call_json("PUT", "/jobs/nope", {"status": "done"})[0], 404)

    def test_delete_answers_the_job_as_it_was_and_removes_it(self):
        job_id = self.running_job()
        status, body = self.call_json("DELETE", f"/jobs/{job_id}")
        self.assertEqual((status, body["id"], body["status"]), (200, job_id, "running"))
        self.assertEqual(self.call_json("GET", f"/jobs/{job_id}")[0], 404)
        self.assertEqual(self.call_json("DELETE", f"/jobs/{job_id}")[0], 404)

    def test_other_methods_are_405_in_the_dialect_format(self):
        self.assertEqual(self.call_json("PATCH", "/jobs/x", {}), (405, {"error": "method not allowed"}))
        self.assertEqual(self.call_json("GET", "/want_job"), (405, {"error": "method not allowed"}))
        self.assertEqual(self.call("GET", "/want_job").headers["Allow"], "POST")
        self.assertEqual(self.call("PATCH", "/jobs/x", {}).headers["Allow"], "GET, DELETE, PUT")
