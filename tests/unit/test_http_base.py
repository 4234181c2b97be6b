"""What every route shares: body limits (413), JSON checks, trailing slashes, error mapping."""
import pathlib
import sys

import orjson
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import HttpCase, chunked, raw_exchange  # noqa: E402
import tornado.web  # noqa: E402
from tornado.log import app_log  # noqa: E402
from tornado.testing import ExpectLog, gen_test  # noqa: E402

from tubeway.broker.http.app import collect_routes  # noqa: E402
from tubeway.broker.http.base import ApiError, json_depth_ok, parse_count, slash_optional  # noqa: E402
from tubeway.core.errors import BrokerUnavailable, JobConflict, ProtocolError, UnknownKind  # noqa: E402

LIMIT = 4096


class BodyLimitTest(HttpCase):
    settings_overrides = {"max_body_size": LIMIT}

    def test_content_length_over_the_limit_is_413_in_each_dialect(self):
        big = b'{"queue": "' + b"q" * LIMIT + b'"}'
        self.assertEqual(self.call_json("POST", "/jobs", big),
                         (413, {"error": f"request body larger than {LIMIT} bytes"}))
        status, body = self.call_json("POST", "/api/v1/jobs", big)
        self.assertEqual((status, body["error"]), (413, f"request body larger than {LIMIT} bytes"))
        self.assertEqual(self.broker.calls, [])

    def test_a_body_at_the_limit_is_read(self):
        body = b'{"queue": "q", "params": "' + b"x" * (LIMIT - 40) + b'"}'
        body += b" " * (LIMIT - len(body))
        self.assertEqual(self.call_json("POST", "/jobs", body)[0], 202)

    @gen_test
    async def test_chunked_body_over_the_limit_is_413(self):
        head = b"POST /api/v1/jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, headers, body = await raw_exchange(self.get_http_port(), head, chunked(b" " * (LIMIT * 3)))
        self.assertEqual((status, orjson.loads(body)), (413, {"error": f"request body larger than {LIMIT} bytes"}))
        self.assertEqual(self.broker.calls, [])

    @gen_test
    async def test_chunked_body_under_the_limit_is_accepted(self):
        head = b"POST /jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, _, body = await raw_exchange(self.get_http_port(), head, chunked(b'{"queue": "q"}', 3))
        self.assertEqual((status, orjson.loads(body)["queue"]), (202, "q"))

    @gen_test
    async def test_expect_continue_is_answered_before_the_body(self):
        head = (b"POST /jobs HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1))
        status, _, body = await raw_exchange(self.get_http_port(), head)
        self.assertEqual((status, orjson.loads(body)), (413, {"error": f"request body larger than {LIMIT} bytes"}))

    @gen_test
    async def test_body_far_over_the_limit_is_answered_at_once(self):
        self._app.drain_bytes = 1000
        head = b"POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n"
        status, _, _ = await raw_exchange(self.get_http_port(), head, b" " * 1000)
        self.assertEqual(status, 413)
        head = b"POST /jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, _, _ = await raw_exchange(self.get_http_port(), head, chunked(b" " * (LIMIT + 2000))[:-5])
        self.assertEqual(status, 413)

    @gen_test
    async def test_connection_stays_usable_after_a_drained_413(self):
        big = b"POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s" % (LIMIT + 1, b" " * (LIMIT + 1))
        small = b'POST /jobs HTTP/1.1\r\nHost: t\r\nContent-Length: 14\r\n\r\n{"queue": "q"}'
        replies = await raw_exchange(self.get_http_port(), big + small, responses=2)
        self.assertEqual([status for status, _, _ in replies], [413, 202])


class JsonTest(HttpCase):
    def test_malformed_json_is_400_with_a_clear_message(self):
        for body in (b"{", b"{'queue': 1}", b"\xff\xfe", b"NaN", b'{"queue": "q",}', b"[1] [2]", b"1e999"):
            for path in ("/jobs", "/api/v1/jobs"):
                status, reply = self.call_json("POST", path, body)
                self.assertEqual(status, 400, (path, body))
                self.assertTrue(reply["error"].startswith("malformed JSON"), reply)

    def test_empty_body_is_400(self):
        for path in ("/jobs", "/api/v1/jobs"):
            self.assertEqual(self.call_json("POST", path, b"")[1]["error"], "the request body must be JSON")

    def test_nesting_deeper_than_64_is_400(self):
        deep = b'{"queue": "q", "params": ' + b"[" * 64 + b"]" * 64 + b"}"
        self.assertEqual(self.call_json("POST", "/jobs", deep)[0], 400)
        ok = b'{"queue": "q", "params": ' + b"[" * 63 + b"]" * 63 + b"}"
        self.assertEqual(self.call_json("POST", "/jobs", ok)[0], 202)
        self.assertEqual(self.call_json("POST", "/jobs", b"[" * 5000 + b"]" * 5000)[0], 400)


class RoutingTest(HttpCase):
    def test_every_route_answers_with_a_trailing_slash(self):
        job = self.broker.add(namespace="accepted", kind="external", state="running")
        native = self.broker.add()
        for method, path, body in (("GET", "/api/v1/jobs/", None), ("POST", "/api/v1/jobs/", {"kind": "noop"}),
                                   ("GET", f"/api/v1/jobs/{job['id']}/", None), ("GET", "/api/v1/queues/", None),
                                   ("POST", f"/api/v1/jobs/{native['id']}/cancel/", None),
                                   ("POST", "/jobs/", {"queue": "q"}), ("GET", f"/jobs/{job['id']}/", None),
                                   ("POST", "/want_job/", None), ("PUT", f"/jobs/{job['id']}/", {"status": "done"}),
                                   ("DELETE", f"/jobs/{job['id']}/", None), ("GET", "/healthz/", None),
                                   ("GET", "/metrics/", None), ("GET", "/plugin/hello/", None)):
            self.assertLess(self.call(method, path, body).code, 300, (method, path))

    def test_unknown_path_is_404_json(self):
        status, body = self.call_json("GET", "/nope")
        self.assertEqual((status, body), (404, {"error": "no route for GET /nope"}))
        self.assertEqual(self.call_json("GET", "/jobs//")[0], 404)

    def test_plugin_routes_are_served(self):
        self.assertEqual(self.call_json("GET", "/plugin/hello"), (200, {"hello": "plugin"}))

    def test_plugin_route_without_base_handler_is_warned_about(self):
        self.plugins.http_routes = lambda settings: [(r"/bare", tornado.web.RequestHandler)]
        with self.assertLogs("tubeway.http", "WARNING") as logs:
            rules = collect_routes(self.config, self.plugins)
        self.assertEqual(rules[-1][0], "/bare/?$")
        self.assertIn("no authentication", logs.output[0])

    def test_head_and_options_do_not_fail(self):
        for method in ("HEAD", "OPTIONS"):
            for path in ("/jobs", "/api/v1/jobs", "/healthz", "/nope"):
                self.assertLess(self.call(method, path).code, 500, (method, path))


class ErrorMappingTest(HttpCase):
    def test_broker_errors_map_to_statuses(self):
        for error, status in ((JobConflict("busy"), 409), (UnknownKind("no such kind", "kind"), 400),
                              (ProtocolError("bad frame"), 500)):
            self.broker.failure = error
            code, body = self.call_json("GET", "/api/v1/queues")
            self.assertEqual(code, status, error)
            self.assertIn(error.message, body["error"])

    def test_unexpected_exception_is_logged_and_500_in_dialect_format(self):
        self.broker.failure = RuntimeError("boom")
        with ExpectLog(app_log, "Uncaught exception"):
            self.assertEqual(self.call_json("GET", "/jobs/x"), (500, {"error": "internal server error"}))
        with ExpectLog(app_log, "Uncaught exception"):
            self.assertEqual(self.call_json("GET", "/api/v1/queues"), (500, {"error": "internal server error"}))

    def test_invalid_utf8_in_path_or_query_is_400(self):
        self.assertEqual(self.call_json("GET", "/api/v1/jobs/%ff")[0], 400)
        self.assertEqual(self.call_json("GET", "/api/v1/jobs?queue=%ff")[0], 400)


class OperationalTest(HttpCase):
    def test_healthz_without_workers_or_broker_is_503(self):
        self.broker.workers = 0
        self.assertEqual(self.call_json("GET", "/healthz"), (503, {"status": "unavailable",
                                                                   "reason": "no worker connected"}))
        self.broker.failure = BrokerUnavailable("no reply from the broker at tcp://x")
        status, body = self.call_json("GET", "/healthz")
        self.assertEqual((status, body["status"]), (503, "unavailable"))
        self.assertIn("no reply", body["reason"])

    def test_healthz_asks_with_a_one_second_timeout(self):
        self.call_json("GET", "/healthz")
        self.assertEqual(self.broker.commands(), ["HEALTH"])

    def test_metrics_is_prometheus_text(self):
        response = self.call("GET", "/metrics")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(response.body.decode(), self.broker.metrics_text)


@pytest.mark.parametrize("pattern, expected", [
    ("/jobs", "/jobs/?$"), ("/jobs$", "/jobs/?$"), ("/jobs/?", "/jobs/?$"), ("/", "/$"), ("/a/([^/]+)", "/a/([^/]+)/?$"),
])
def test_slash_optional(pattern, expected):
    assert slash_optional(pattern) == expected


def test_parse_count():
    assert parse_count(" 42 ", "n") == 42
    for text in ("-1", "4", "", "1.0", "٣"):
        with pytest.raises(ApiError) as caught:
            parse_count(text, "n", maximum=3)
        assert caught.value.status_code == 400 and "n must be" in caught.value.message


def test_json_depth():
    assert json_depth_ok({"a": [1, {"b": []}]}, limit=4)
    assert not json_depth_ok({"a": [1, {"b": []}]}, limit=3)
    assert json_depth_ok(5, limit=0)
