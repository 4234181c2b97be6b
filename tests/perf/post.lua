-- wrk script of the HTTP submit benchmark: every request POSTs one no-op job as JSON.
wrk.method = "POST"
wrk.body = '{"kind":"noop"}'
wrk.headers["Content-Type"] = "application/json"
