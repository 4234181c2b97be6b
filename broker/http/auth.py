"""Who may use the HTTP API: plugin decisions first, then the configured tokens.

A token is sent as ``Authorization: Bearer <token>`` or, for clients that only
speak Basic, as the password of ``Authorization: Basic`` (any user name).
"""
import base64
import binascii
import hmac
import inspect

from tubeway.core.errors import ConfigError
from tubeway.core.settings import is_loopback


def configured_tokens(settings):
    """The auth tokens of ``settings`` as bytes (a list, or one comma-separated string)."""
    tokens = getattr(settings, "auth_tokens", None) or ()
    if isinstance(tokens, str):
        tokens = tokens.split(",")
    return tuple(t.strip().encode("utf-8") for t in tokens if isinstance(t, str) and t.strip())


def presented_token(header):
    """The token an ``Authorization`` header value carries, as bytes, or None."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    scheme = scheme.lower()
    if scheme == "bearer":
        # Tornado decodes header values as latin-1: this gives back the bytes sent.
        return value.encode("latin-1", "replace")
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.encode("latin-1", "replace"), validate=True)
        except (binascii.Error, ValueError):
            return None
        _, colon, password = decoded.partition(b":")
        return password if colon else None
    return None


def token_matches(presented, tokens):
    """True when ``presented`` equals one of ``tokens`` (constant time per token)."""
    found = False
    for token in tokens:
        found |= hmac.compare_digest(presented, token)
    return found


async def authorize(handler):
    """True when the request ``handler`` serves may proceed.

    Plugins decide first (True accepts, False refuses, None falls through); then,
    with tokens configured, the request must present one. With none configured an
    ``Authorization`` header is ignored.
    """
    app = handler.application
    decision = None
    if app.plugins is not None:
        decision = app.plugins.authenticate(handler, app.config)
        if inspect.isawaitable(decision):
            decision = await decision
    if decision is not None:
        return bool(decision)
    if not app.tokens:
        return True
    token = presented_token(handler.request.headers.get("Authorization"))
    return token is not None and token_matches(token, app.tokens)


def check_exposure(host, settings):
    """Refuse to serve a non-loopback address without tokens unless told to explicitly."""
    if is_loopback(host) or configured_tokens(settings) or getattr(settings, "insecure_no_auth", False):
        return
    raise ConfigError(
        f"http: refusing to serve {host or 'every address'} without auth tokens; "
        "set auth_tokens (TUBEWAY_AUTH_TOKENS) or insecure_no_auth to serve it anyway",
        setting="http",
    )
