"""Authentication of the HTTP API: tokens (Bearer, Basic), plugin decisions, the open health route."""
import base64
import pathlib
import sys
import types

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # the shared fakes, whatever the import mode

from test_http_support import TOKEN, HttpCase, chunked, raw_exchange  # noqa: E402
from tornado.testing import gen_test  # noqa: E402

from tubeway.broker.http.auth import check_exposure, configured_tokens, presented_token  # noqa: E402
from tubeway.core.errors import ConfigError  # noqa: E402

ROUTES = [("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs/x"),
          ("POST", "/api/v1/jobs/x/retry"), ("GET", "/api/v1/queues"), ("POST", "/jobs"), ("GET", "/jobs/x"),
          ("PUT", "/jobs/x"), ("DELETE", "/jobs/x"), ("POST", "/want_job"), ("GET", "/metrics"),
          ("GET", "/plugin/hello"), ("GET", "/no/such/route")]


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TokenTest(HttpCase):
    settings_overrides = {"auth_tokens": ["other", TOKEN]}

    def test_every_route_but_healthz_needs_a_token(self):
        for method, path in ROUTES:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Token {TOKEN}"},
                            {"Authorization": basic(TOKEN, "wrong")}, {"Authorization": "Basic !!!"},
                            {"Authorization": "Bearer"}, {"Authorization": f"Bearer {TOKEN}x"}):
                response = self.call(method, path, b"{}" if method in ("POST", "PUT") else None, headers)
                self.assertEqual(response.code, 401, (method, path, headers))
                self.assertIn(b'"error"', response.body)
                self.assertEqual(response.headers["WWW-Authenticate"], 'Bearer realm="tubeway"')
        self.assertEqual(self.broker.calls, [])

    def test_bearer_and_basic_with_any_user_are_accepted(self):
        for auth in (f"Bearer {TOKEN}", f"bearer  {TOKEN} ", "Bearer other", basic("anyone", TOKEN), basic("", TOKEN)):
            status, _ = self.call_json("GET", "/api/v1/queues", headers={"Authorization": auth})
            self.assertEqual(status, 200, auth)

    def test_healthz_is_open(self):
        status, body = self.call_json("GET", "/healthz")
        self.assertEqual((status, body), (200, {"status": "ok", "workers": 1}))

    def test_unauthenticated_error_uses_the_dialect_format(self):
        self.assertEqual(self.call_json("POST", "/jobs", {"queue": "q"}), (401, {"error": "authentication required: "
                                                                             "send Authorization: Bearer <token>"}))

    def test_401_wins_over_413_and_reads_the_body(self):
        self.config.max_body_size = self._app.max_body_size = 10
        response = self.call("POST", "/api/v1/jobs", b"x" * 1000)
        self.assertEqual(response.code, 401)

    def test_plugin_decision_comes_first(self):
        self.plugins.decision = True
        self.assertEqual(self.call_json("GET", "/api/v1/queues")[0], 200)
        self.plugins.decision = False
        self.assertEqual(self.call_json("GET", "/api/v1/queues", headers={"Authorization": f"Bearer {TOKEN}"})[0], 401)

    def test_plugin_may_return_an_awaitable(self):
        async def allow(handler, settings):
            return handler.request.headers.get("X-Team") == "a"
        self.plugins.authenticate = allow
        self.assertEqual(self.call_json("GET", "/api/v1/queues", headers={"X-Team": "a"})[0], 200)
        self.assertEqual(self.call_json("GET", "/api/v1/queues", headers={"X-Team": "b"})[0], 401)


class NoTokenTest(HttpCase):
    def test_authorization_header_is_ignored(self):
        for auth in ("Bearer whatever", "Basic !!!", "garbage"):
            self.assertEqual(self.call_json("GET", "/api/v1/queues", headers={"Authorization": auth})[0], 200)

    def test_plugin_may_still_refuse(self):
        self.plugins.decision = False
        self.assertEqual(self.call_json("GET", "/api/v1/queues")[0], 401)
        self.assertEqual(self.call_json("GET", "/healthz")[0], 200)


class RefusedBodyTest(HttpCase):
    settings_overrides = {"auth_tokens": [TOKEN]}

    @gen_test
    async def test_refused_chunked_body_is_read_then_answered(self):
        body = chunked(b"x" * 50000)
        head = b"POST /jobs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, _, reply = await raw_exchange(self.get_http_port(), head, body)
        self.assertEqual((status, reply), (401, b'{"error":"authentication required: send Authorization: Bearer <token>"}'))


@pytest.mark.parametrize("header, token", [
    (f"Bearer {TOKEN}", TOKEN.encode()), ("Basic " + base64.b64encode(b"u:p:w").decode(), b"p:w"),
    ("Basic " + base64.b64encode(b"nocolon").decode(), None), ("Negotiate abc", None), (None, None), ("", None),
])
def test_presented_token(header, token):
    assert presented_token(header) == token


def test_configured_tokens_accept_a_list_or_a_comma_string():
    assert configured_tokens(types.SimpleNamespace(auth_tokens=["a", " b ", ""])) == (b"a", b"b")
    assert configured_tokens(types.SimpleNamespace(auth_tokens="a,b")) == (b"a", b"b")
    assert configured_tokens(types.SimpleNamespace()) == ()


def test_exposure_needs_tokens_or_the_explicit_setting():
    open_settings = types.SimpleNamespace(auth_tokens=[], insecure_no_auth=False)
    for host in ("127.0.0.1", "localhost", "::1"):
        check_exposure(host, open_settings)
    for host in ("0.0.0.0", "", "example.com", "10.0.0.1"):
        with pytest.raises(ConfigError):
            check_exposure(host, open_settings)
    check_exposure("0.0.0.0", types.SimpleNamespace(auth_tokens=["t"], insecure_no_auth=False))
    check_exposure("0.0.0.0", types.SimpleNamespace(auth_tokens=[], insecure_no_auth=True))
