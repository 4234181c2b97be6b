"""The native API's queue endpoints and live job notes.

* ``GET /api/v1/endpoints`` (``?namespace=``): every registered endpoint.
* ``PUT /api/v1/endpoints/<namespace>/<queue>``: register or replace the endpoint of a
  queue's ``push`` jobs: ``{"url", "method"?, "headers"?, "timeout"? seconds, "concurrency"?}``.
* ``DELETE /api/v1/endpoints/<namespace>/<queue>``: remove it (404 if there is none).
* ``POST /api/v1/jobs/<id>/note``: ``{"progress"?, "logs"?: [line], "lock"?}`` sets a job's
  progress and appends log lines; with ``lock``, only while that attempt holds the job (409).
"""
from tubeway.broker.http.base import ApiError, BaseHandler
from tubeway.core.errors import LockRefused


class EndpointsHandler(BaseHandler):
    """``GET /api/v1/endpoints``."""

    async def get(self):
        self.reply(await self.broker.list_endpoints(self.get_query_argument("namespace", None) or None))


class EndpointHandler(BaseHandler):
    """``PUT`` and ``DELETE /api/v1/endpoints/<namespace>/<queue>``."""

    async def put(self, namespace, queue):
        body = self.json_body()
        if not isinstance(body, dict) or set(body) - {"url", "method", "headers", "timeout", "concurrency"}:
            raise ApiError(400, 'the body must be {"url", "method"?, "headers"?, "timeout"?, "concurrency"?}')
        self.reply(await self.broker.set_endpoint(namespace, queue, body.get("url"), body.get("method") or "POST",
                                                  body.get("headers"), body.get("timeout", 3.0),
                                                  body.get("concurrency", 1)))

    async def delete(self, namespace, queue):
        self.reply(await self.broker.delete_endpoint(namespace, queue))


class NoteHandler(BaseHandler):
    """``POST /api/v1/jobs/<id>/note``: the job after the change."""

    async def post(self, job_id):
        body = self.json_body()
        if not isinstance(body, dict) or set(body) - {"progress", "logs", "lock"}:
            raise ApiError(400, 'the body must be {"progress"?, "logs"?: [line], "lock"?}')
        try:
            self.reply(await self.broker.note(self.job_id(job_id), **body))
        except LockRefused as exc:
            raise ApiError(409, exc.message, field="lock") from None


def endpoint_routes():
    """The endpoint and note rules (the native module adds the trailing-slash variants)."""
    return [
        (r"/api/v1/endpoints", EndpointsHandler),
        (r"/api/v1/endpoints/([^/]+)/([^/]+)", EndpointHandler),
        (r"/api/v1/jobs/([^/]+)/note", NoteHandler),
    ]
