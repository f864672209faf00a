"""Who may talk to the review server.

* Bound to loopback (the default) it needs no token, but only answers requests whose ``Host`` is a loopback
  name (a web page elsewhere cannot reach it by DNS rebinding), and writes only on JSON requests (a
  cross-site form cannot send those without a CORS preflight, which the server never grants).
* Bound to any other address it needs a token on every request: the ``X-Recap-Token`` header, or the cookie
  set by opening the login link ``/login?token=...`` that ``recap review`` prints.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_HEADER = "x-recap-token"
TOKEN_COOKIE = "recap_review_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):  # [::1]:8765
        return host_header[: host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class AccessGuard:
    """ASGI middleware enforcing the rules in the module docstring; ``token=None`` means loopback-only."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._instead(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _instead(self, scope: Scope, headers: dict[str, str]) -> Response | None:
        """The response to send instead of the app's (a refusal, or the login redirect), or None."""
        if self.token is None:
            if not is_loopback(_host_name(headers.get("host", ""))):
                return PlainTextResponse(
                    "this review server answers only on localhost / 127.0.0.1; to serve other machines, "
                    "start it with --host and use the login link it prints",
                    status_code=403,
                )
        elif scope["path"] == "/login":
            return self._login(scope)
        elif not self._has_token(headers):
            return PlainTextResponse(
                "this review server needs its token: open the login link `recap review` printed "
                f"(/login?token=...), or send the {TOKEN_HEADER} header",
                status_code=401,
            )
        if scope["method"] not in ("GET", "HEAD") and not headers.get("content-type", "").startswith(
            "application/json"
        ):
            return PlainTextResponse("write requests must send a JSON body (application/json)", 415)
        return None

    def _has_token(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        sent = headers.get(TOKEN_HEADER)
        if sent is None:
            cookie = SimpleCookie(headers.get("cookie", ""))
            sent = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None
        return sent is not None and secrets.compare_digest(sent.encode(), self.token.encode())

    def _login(self, scope: Scope) -> Response:
        assert self.token is not None
        sent = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if not secrets.compare_digest(sent.encode(), self.token.encode()):
            return PlainTextResponse("wrong or missing token in the login link", status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        return response
