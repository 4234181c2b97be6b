"""Junk bodies, headers and queries sent to every route never get a 5xx."""
import pathlib
import random
import sys

import orjson

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import TOKEN, HttpCase  # noqa: E402

from tubeway.core.job import SPEC_FIELDS  # noqa: E402

JUNK_BODIES = [
    b"", b" ", b"{", b"}", b"[", b"\x00", b"\xff\xfe\xfd", b"null", b"true", b"0", b"-1", b"1e308", b"1e999",
    b"NaN", b"Infinity", b'"str"', b"[]", b"{}", b"[{}]", b"[null]", b"[[]]", b'{"":""}', b'"\\ud800"',
    b"18446744073709551615", b"-9223372036854775809", b"123456789012345678901234567890",
    b"[" * 100 + b"]" * 100, b"{\"a\":" * 70 + b"1" + b"}" * 70, b"[" * 3000, b"x" * 10000,
    b'{"queue": "q", "params": ' + b"[" * 80 + b"]" * 80 + b"}", b"\xef\xbb\xbf{}", b"queue=q&params=1",
    b'{"queue": "q"} trailing', b'{"a": 1, "a": 2}', "{\"queue\": \"\u00e9\u4e2d\U0001f600\"}".encode(),
]
JUNK_VALUES = [None, True, False, 0, -1, 3, 2**63, 2**64 - 1, -2**63, 1.5, -1e300, "", " ", "x" * 300, "done",
               "failed", "running", "http://example.test/", "ftp://x", [], [1], [""], ["q"], {}, {"a": None},
               {"type": "exponential", "delay": -1}, {"type": "weird"}, {"k": 5}, [[[[]]]]]
JUNK_HEADER_VALUES = ["-1", "abc", "1e5", "99999999999999999999", "", " ", "3.0", "0x1", "4", "1,2", "\t7",
                      "+1", "0" * 30, "2147483648", "\u00b2"]
ACCEPTED_HEADERS = ["X-Accepted-Priority", "X-Accepted-Result-TTL", "X-Accepted-Callback-URL",
                    "X-Accepted-Job-Timeout", "X-Accepted-Delay", "X-Accepted-Wait-Result",
                    "X-Accepted-Block-For", "X-Accepted-Timeout", "Content-Type", "Expect", "Authorization"]
JUNK_QUERIES = ["limit=x", "limit=0", "limit=99999", "state=x", "label=x", "label=:", "label=a:b&label=a:c",
                "cursor=%ff", "queue=", "queue=%00", "namespace=" + "n" * 500, "block=-1", "timeout=x", "block=1e9",
                "timeout=99999999999999999999999", "queue=a&queue=&queue=b"]
FIELDS = list(SPEC_FIELDS) + ["params", "data", "status", "result", "queue", "bogus"]


def junk_objects(count, seed=7):
    """Objects with a random subset of known fields set to values of random (mostly wrong) types."""
    rng = random.Random(seed)
    objects = []
    for _ in range(count):
        item = {field: rng.choice(JUNK_VALUES) for field in rng.sample(FIELDS, rng.randint(0, 6))}
        if rng.random() < 0.5:
            item.setdefault("kind", rng.choice(["noop", "external", "nope", 5]))
        objects.append(item)
    return objects


class GarbageTest(HttpCase):
    def routes(self, junk_ids=("nope",)):
        """Every route with the methods it serves, for existing jobs and ``junk_ids``."""
        accepted = self.broker.add(namespace="accepted", kind="external", state="running")["id"]
        native = self.broker.add()["id"]
        routes = [("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/queues"),
                  ("POST", "/jobs"), ("POST", "/want_job"), ("GET", "/healthz"), ("GET", "/metrics")]
        for job_id in (accepted, native, *junk_ids):
            routes += [("GET", f"/api/v1/jobs/{job_id}"), ("POST", f"/api/v1/jobs/{job_id}/retry"),
                       ("POST", f"/api/v1/jobs/{job_id}/cancel"), ("GET", f"/jobs/{job_id}"),
                       ("PUT", f"/jobs/{job_id}"), ("DELETE", f"/jobs/{job_id}")]
        return routes

    def assert_no_5xx(self, method, path, body=None, headers=None):
        response = self.call(method, path, body, headers)
        self.assertLess(response.code, 500, (method, path, body, headers, response.body))
        if response.code >= 400:
            self.assertIsInstance(orjson.loads(response.body)["error"], str)

    def test_junk_bodies(self):
        for method, path in self.routes(junk_ids=("nope", "%00", "%2F..", "%ff", "a" * 300)):
            for body in JUNK_BODIES:
                self.assert_no_5xx(method, path, body)

    def test_junk_objects(self):
        objects = junk_objects(120)
        for method, path in [r for r in self.routes() if r[0] in ("POST", "PUT")]:
            for item in objects:
                self.assert_no_5xx(method, path, item)
        for batch in (objects, objects[:3], [objects[0]] * 2):
            self.assert_no_5xx("POST", "/api/v1/jobs", batch)

    def test_junk_headers(self):
        body = {"queue": "q", "params": 1, "status": "done"}
        for method, path in self.routes(junk_ids=()):
            for header in ACCEPTED_HEADERS:
                for value in JUNK_HEADER_VALUES:
                    self.assert_no_5xx(method, path, body, {header: value})

    def test_junk_queries(self):
        for method, path in self.routes():
            for query in JUNK_QUERIES:
                self.assert_no_5xx(method, f"{path}?{query}")

    def test_stored_jobs_are_all_normalized(self):
        for item in junk_objects(300, seed=11):
            self.call("POST", "/api/v1/jobs", item)
            self.call("POST", "/jobs", item)
        for job in self.broker.jobs.values():
            self.assertIn(job["kind"], ("noop", "external"))
            self.assertIsInstance(job["queue"], str)
            self.assertIsInstance(job["priority"], int)


class GarbageWithTokensTest(HttpCase):
    settings_overrides = {"auth_tokens": [TOKEN]}

    def test_junk_authorization_never_5xx(self):
        for value in ("Bearer", "Basic", "Basic =", "Basic " + "A" * 1001, "Bearer \u00e9", "Bearer  " + TOKEN + " x",
                      "\x01", "Basic Og==", "Digest x", "Bearer " + "t" * 5000):
            for method, path in (("GET", "/api/v1/queues"), ("POST", "/jobs"), ("GET", "/healthz")):
                response = self.call(method, path, b"{}" if method == "POST" else None, {"Authorization": value})
                # Tornado itself refuses a control character in a header with a bare 400.
                self.assertIn(response.code, (200, 400, 401) if value == "\x01" else (200, 401), (value, path))
