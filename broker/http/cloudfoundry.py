"""Cloud Foundry's v3 tasks API (API-NOTES section 4), its root document and token endpoint.

Routes: ``POST|GET /v3/apps/<guid>/tasks``, ``GET /v3/tasks``, ``GET|PATCH /v3/tasks/<guid>``,
``POST /v3/tasks/<guid>/actions/cancel``, ``PUT /v3/tasks/<guid>/cancel``, ``GET /`` and
``POST /oauth/token``. A task is a ``command`` job (namespace ``cloudfoundry``, queue = the
app's guid, one attempt); names, sequence numbers, metadata, the cancelling state and every
list query are the broker's (see :mod:`.cloudfoundry_shape` and :mod:`.cloudfoundry_query`).
Errors are Cloud Foundry's ``{"errors": [{"code", "title", "detail"}]}``.
"""
import base64
import secrets

from tornado import httputil

from tubeway.broker.http.auth import token_matches
from tubeway.broker.http.base import ApiError, BaseHandler, routes_with_slash
from tubeway.broker.http.cloudfoundry_shape import ERRORS, NAMESPACE, cf_error, error_body
from tubeway.core.errors import BrokerUnavailable, JobNotFound, ValidationError

#: Lifetime the token endpoint announces (API tokens do not expire).
TOKEN_SECONDS = 86400 * 365
_BY_STATUS = {400: "MessageParseError", 401: "NotAuthenticated", 403: "NotAuthorized", 404: "NotFound",
              405: "MethodNotAllowed", 413: "MessageParseError", 422: "UnprocessableEntity",
              503: "ServiceUnavailable"}


class CloudFoundryHandler(BaseHandler):
    """The base of the routes here: Cloud Foundry errors and absolute links."""

    def write_error_body(self, status, message, **extra):
        name = extra.get("cf_name")
        if name is None:  # raised below this dialect (auth, body size, routing): worded as Cloud Foundry words it
            name = _BY_STATUS.get(status, "ServerError")
            message = ERRORS[name][2].format(message)
        self.reply(error_body(name, extra.get("cf_code") or ERRORS[name][1], message))

    def describe_error(self, exc, status):
        if isinstance(exc, JobNotFound):
            return 404, "Task not found", {"cf_name": "ResourceNotFound", "cf_code": 10010}
        if isinstance(exc, ValidationError):
            return 422, exc.message, {"cf_name": "UnprocessableEntity", "cf_code": 10008}
        if isinstance(exc, BrokerUnavailable):
            return 503, exc.message, {"cf_name": "ServiceUnavailable", "cf_code": 10015}
        return super().describe_error(exc, status)

    @property
    def base_url(self):
        """``public_url`` or the request's scheme and host: every ``href`` starts with it."""
        configured = getattr(self.config, "public_url", None)
        return (configured or f"{self.request.protocol}://{self.request.host}").rstrip("/")

    @property
    def apps(self):
        """The configured apps: ``{guid: settings}``."""
        return getattr(self.config, "apps", None) or {}

    def task_body(self, required=True):
        """The JSON object body, or 400 CF-MessageParseError."""
        try:
            body = self.json_body(required=required)
        except ApiError as exc:
            raise cf_error("MessageParseError", exc.message) from None
        if body is not None and not isinstance(body, dict):
            raise cf_error("MessageParseError", "the body must be a JSON object")
        return body

    async def task(self, guid):
        """The task's record (404 ``Task not found`` for any other job)."""
        if not guid or len(guid) > 36:
            raise JobNotFound("Task not found")
        return await self.broker.get(guid, namespace=NAMESPACE)


class RootHandler(CloudFoundryHandler):
    """``GET /``: Cloud Foundry's root document, so CF clients find the v3 API and the token endpoint."""

    open_methods = frozenset({"GET"})

    async def get(self):
        base = self.base_url
        self.reply({"links": {
            "self": {"href": base},
            "cloud_controller_v2": None,
            "cloud_controller_v3": {"href": f"{base}/v3", "meta": {"version": "3.180.0"}},
            "login": {"href": base}, "uaa": {"href": base},
            "network_policy_v0": None, "network_policy_v1": None, "logging": None, "log_stream": None,
            "app_ssh": None, "credhub": None, "routing": None,
        }})


class TokenHandler(CloudFoundryHandler):
    """``POST /oauth/token``: the password or client secret is an API token, and becomes the access token.

    Grant types ``password``, ``client_credentials`` (secret in the form or in Basic auth)
    and ``refresh_token`` (the refresh token is the same API token). With no tokens
    configured, any secret is accepted.
    """

    open_methods = frozenset({"POST"})

    async def post(self):
        form = self._form()
        grant = form.get("grant_type")
        secrets_by_grant = {"password": form.get("password"), "refresh_token": form.get("refresh_token"),
                            "client_credentials": form.get("client_secret") or self._basic_secret()}
        if grant not in secrets_by_grant:
            self.set_status(400)
            return self.reply({"error": "unsupported_grant_type",
                               "error_description": "grant_type must be password, client_credentials or "
                                                    "refresh_token"})
        secret = secrets_by_grant[grant] or ""
        tokens = self.application.tokens
        if tokens and not token_matches(secret.encode("utf-8"), tokens):
            self.set_status(401)
            return self.reply({"error": "unauthorized", "error_description": "Bad credentials"})
        token = secret or secrets.token_hex(16)
        self.reply({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS,
                    "refresh_token": token, "scope": "cloud_controller.read cloud_controller.write",
                    "jti": secrets.token_hex(16)})

    def _form(self):
        arguments, files = {}, {}
        content_type = self.request.headers.get("Content-Type", "application/x-www-form-urlencoded")
        httputil.parse_body_arguments(content_type, self.body_bytes(), arguments, files)
        return {name: values[-1].decode("utf-8", "replace") for name, values in arguments.items()}

    def _basic_secret(self):
        header = self.request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return ""
        try:
            return base64.b64decode(header[6:]).decode("utf-8").partition(":")[2]
        except ValueError:
            return ""


def routes():
    """The Cloud Foundry rules: the root document, the token endpoint and the task routes."""
    from tubeway.broker.http import cloudfoundry_tasks as tasks

    return routes_with_slash([
        (r"/", RootHandler),
        (r"/oauth/token", TokenHandler),
        (r"/v3/apps/([^/]+)/tasks", tasks.AppTasksHandler),
        (r"/v3/tasks", tasks.TasksHandler),
        (r"/v3/tasks/([^/]+)", tasks.TaskHandler),
        (r"/v3/tasks/([^/]+)/actions/cancel", tasks.CancelHandler),
        (r"/v3/tasks/([^/]+)/cancel", tasks.CancelHandler),
    ])
