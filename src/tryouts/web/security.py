"""The dashboard's guards: host check, access token, CSRF token, and strict response headers.

* **Host.** Bound to a loopback address, only ``Host: 127.0.0.1|localhost|[::1]:PORT`` is served (a page on
  another site cannot reach the dashboard through DNS rebinding).
* **Token.** Bound to any other address, every request needs the access token: ``Authorization: Bearer
  TOKEN``, or the ``tryouts_token`` cookie that opening ``/?token=TOKEN`` once sets (HttpOnly, SameSite=Strict;
  the token is then dropped from the address). Without it: 401 (403 for a wrong one).
* **CSRF.** Every state-changing request (POST, PUT, PATCH, DELETE) needs the header ``X-Tryouts-CSRF`` with
  the server's CSRF token (in each page's ``<meta name="csrf-token">`` and at ``GET /api/csrf``, which another
  site's scripts cannot read), and an ``Origin``, when sent, equal to the dashboard's own.
* **Headers.** A strict Content-Security-Policy (scripts and everything else from the dashboard itself only;
  no inline script, no eval, no framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, and ``Cache-Control: no-store`` on the API.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Scripts only from the dashboard (never inline, never eval). Inline *styles* are allowed because Plotly sets
element styles from script; they cannot run code."""

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_COOKIE = "tryouts_token"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only."""
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random URL-safe token (32 bytes)."""
    return secrets.token_urlsafe(32)


class Guard:
    """ASGI middleware applying the rules in the module docstring."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, token: str | None, csrf: str) -> None:
        self.app, self.bind_host, self.port, self.token, self.csrf = app, host, port, token, csrf
        self.loopback = is_loopback(host)

    def _host_ok(self, request: Request) -> bool:
        if not self.loopback:
            return True  # the token guards a non-loopback bind
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return is_loopback(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self._check(request)
        if response is not None:
            await self._headers(response)(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in self._header_items(request.url.path):
                    if k.encode() not in names:
                        headers.append((k.encode(), v.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check(self, request: Request) -> Response | None:
        if not self._host_ok(request):
            return JSONResponse({"detail": "Unknown Host header: open the dashboard at the address 'tryouts ui' "
                                 "printed (127.0.0.1 or localhost)."}, status_code=421)
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and request.method == "GET":
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    return JSONResponse({"detail": "Wrong token."}, status_code=403)
                rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                target = URL(request.url.path + (("?" + urlencode(rest)) if rest else ""))
                redirect = RedirectResponse(str(target), status_code=303)
                redirect.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict", path="/")
                return redirect
            auth = request.headers.get("authorization", "")
            presented = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE)
            if not presented:
                return JSONResponse({"detail": "This dashboard needs its access token: open the address with "
                                     "?token=... that 'tryouts ui' printed, or send 'Authorization: Bearer TOKEN'."},
                                    status_code=401)
            if not hmac.compare_digest(presented.encode(), self.token.encode()):
                return JSONResponse({"detail": "Wrong token."}, status_code=403)
        if request.method in UNSAFE_METHODS:
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
                return JSONResponse({"detail": f"Cross-site request refused (Origin {origin})."}, status_code=403)
            sent = request.headers.get("x-tryouts-csrf", "")
            if not hmac.compare_digest(sent.encode(), self.csrf.encode()):
                return JSONResponse({"detail": "Missing or wrong X-Tryouts-CSRF header: get the token from "
                                     "GET /api/csrf (pages send it for you)."}, status_code=403)
        return None

    def _header_items(self, path: str) -> list[tuple[str, str]]:
        items = [("content-security-policy", CSP), ("x-content-type-options", "nosniff"),
                 ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
        if path.startswith("/api/"):
            items.append(("cache-control", "no-store"))
        return items

    def _headers(self, response: Response) -> Response:
        for k, v in self._header_items(""):
            response.headers[k] = v
        return response
