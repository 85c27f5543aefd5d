"""The dashboard's guards: host check, access token, CSRF token, and strict response headers.

* **Host.** Bound to a loopback address, only ``Host: 127.0.0.1|localhost|[::1]:PORT`` is served (a page on
  another site cannot reach the dashboard through DNS rebinding).
* **Token.** Every request needs the access token, loopback included (another user of this machine can reach
  127.0.0.1 too): ``Authorization: Bearer TOKEN``, or the cookie ``tryouts-token-PORT`` that opening
  ``/?token=TOKEN`` once sets (HttpOnly, SameSite=Strict, Path=/; its name carries the port because browsers
  share cookies between the ports of a host). The token is then dropped from the address by a redirect to a
  same-origin path. Without it: 401 (403 for a wrong one).
* **CSRF.** Every state-changing request (POST, PUT, PATCH, DELETE) needs the header ``X-Tryouts-CSRF`` with
  the server's CSRF token (in each page's ``<meta name="csrf-token">`` and at ``GET /api/csrf``, which needs
  the access token like everything else), and an ``Origin``, when sent, equal to the dashboard's own.
* **Headers.** A strict Content-Security-Policy (scripts and everything else from the dashboard itself only;
  no inline script, no eval, no framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``X-Frame-Options: DENY``, and ``Cache-Control: no-store`` on the API and the pages.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Scripts only from the dashboard (never inline, never eval). Inline *styles* are allowed because Plotly sets
element styles from script; they cannot run code."""

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_ENV = "TRYOUTS_UI_TOKEN"
"""The environment variable that gives the dashboard a known access token (for scripts and tests)."""


def token_cookie(port: int) -> str:
    """The access token's cookie name for the dashboard on ``port`` (cookies are shared between ports)."""
    return f"tryouts-token-{port}"


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

    def __init__(self, app: ASGIApp, *, host: str, port: int, token: str, csrf: str) -> None:
        self.app, self.bind_host, self.port, self.token, self.csrf = app, host, port, token, csrf
        self.cookie = token_cookie(port)
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
        given = request.query_params.get("token")
        if given is not None and request.method in ("GET", "HEAD"):
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return JSONResponse({"detail": "Wrong token: open the address 'tryouts ui' printed."}, status_code=403)
            return self._redirect_without_token(request)
        auth = request.headers.get("authorization", "")
        presented = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(self.cookie)
        if not presented:
            return JSONResponse({"detail": "This dashboard needs its access token: open the address with "
                                 "?token=... that 'tryouts ui' printed, or send 'Authorization: Bearer TOKEN'."},
                                status_code=401)
        if not hmac.compare_digest(presented.encode(), self.token.encode()):
            return JSONResponse({"detail": "Wrong token: open the address 'tryouts ui' printed."}, status_code=403)
        if request.method in UNSAFE_METHODS:
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
                return JSONResponse({"detail": f"Cross-site request refused (Origin {origin})."}, status_code=403)
            sent = request.headers.get("x-tryouts-csrf", "")
            if not hmac.compare_digest(sent.encode(), self.csrf.encode()):
                return JSONResponse({"detail": "Missing or wrong X-Tryouts-CSRF header: get the token from "
                                     "GET /api/csrf (pages send it for you)."}, status_code=403)
        return None

    def _redirect_without_token(self, request: Request) -> Response:
        """To the same path without the token, as a relative reference that cannot leave this origin."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        path = "/" + request.url.path.lstrip("/\\")  # '//evil.example/' would be another host
        target = quote(path, safe="/:@!$&'()*+,;=-._~%") + (("?" + urlencode(rest)) if rest else "")
        redirect = RedirectResponse(target, status_code=303)
        redirect.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
        return redirect

    def _header_items(self, path: str) -> list[tuple[str, str]]:
        items = [("content-security-policy", CSP), ("x-content-type-options", "nosniff"),
                 ("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")]
        if not path.startswith("/static/"):  # pages carry the CSRF token, the API carries results
            items.append(("cache-control", "no-store"))
        return items

    def _headers(self, response: Response) -> Response:
        for k, v in self._header_items(""):
            response.headers[k] = v
        return response
