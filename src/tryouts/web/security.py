"""The dashboard's guards: host check, access token, CSRF token, and strict response headers.

* **Browser address.** Each start picks a random host name under ``.localhost``
  (``http://<16 hex digits>.localhost:PORT/``, :func:`browser_host`); browsers resolve ``*.localhost`` to this
  machine by themselves. The browser keeps the token in a cookie set on, and accepted from, that name only:
  cookies ignore the port, so a cookie on ``127.0.0.1`` would also go to every other program listening on
  127.0.0.1 (another user's included), while one on a name nobody else knows goes nowhere else.
* **Host.** Bound to a loopback address (or all addresses), only that name, ``127.0.0.1``, ``localhost``,
  ``[::1]`` (and the bound address) are served to loopback clients: a page on another site cannot reach the
  dashboard through DNS rebinding.
* **Token.** Every request needs the access token, loopback included (another user of this machine can reach
  127.0.0.1 too): ``Authorization: Bearer TOKEN`` on any served host name, or the cookie ``tryouts-token-PORT``
  on the random name. Opening ``/?token=TOKEN`` on 127.0.0.1, localhost or [::1] redirects to the same address
  on the random name (no cookie is ever set on those); there, it sets the cookie (HttpOnly, SameSite=Strict,
  Path=/, no Domain) and drops the token from the address by a redirect to a same-origin path. On a
  non-loopback address (``--host 0.0.0.0`` reached from another machine, or a LAN address) the cookie is set
  on the address used, as nothing better exists there. Without the token: 401 (403 for a wrong one).
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


PLAIN_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
"""The loopback names always served to scripts (with ``Authorization``); the browser's cookie never lives there."""
NAMED_BINDS = ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", "::", "")
"""Binds a browser reaches through ``*.localhost`` (which browsers resolve to 127.0.0.1 and ::1)."""


def token_cookie(port: int) -> str:
    """The access token's cookie name for the dashboard on ``port``."""
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


def browser_host(bind: str) -> str | None:
    """A new random host name ``<16 hex digits>.localhost`` for a dashboard bound to ``bind``, or None where a
    browser could not reach it by that name (a loopback address other than 127.0.0.1 and ::1, a LAN address)."""
    return f"{secrets.token_hex(8)}.localhost" if bind.strip().lower() in NAMED_BINDS else None


def split_host(header: str) -> tuple[str, str]:
    """``Host`` as (name lowercased, port or ''): ``[::1]:8765`` -> (``[::1]``, ``8765``)."""
    h = header.strip().lower()
    if h.startswith("["):
        end = h.find("]")
        if end == -1:
            return h, ""
        return h[:end + 1], h[end + 2:] if h[end + 1:end + 2] == ":" else ""
    name, sep, port = h.rpartition(":")
    return (name, port) if sep else (h, "")


def _same_origin_path(request: Request) -> str:
    """The request's path as a relative reference that cannot name another host (``//evil/`` would)."""
    path = "/" + request.url.path.lstrip("/\\")
    return quote(path, safe="/:@!$&'()*+,;=-._~%")


class Guard:
    """ASGI middleware applying the rules in the module docstring."""

    def __init__(self, app: ASGIApp, *, host: str, port: int, token: str, csrf: str,
                 browser_name: str | None = None) -> None:
        self.app, self.bind_host, self.port, self.token, self.csrf = app, host, port, token, csrf
        self.cookie = token_cookie(port)
        self.loopback = is_loopback(host)
        self.browser_name = browser_name.lower() if browser_name else None
        bound = host.strip().lower()
        bound = f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound
        self.names = {*PLAIN_LOOPBACK, bound} | ({self.browser_name} if self.browser_name else set())

    def _host_ok(self, name: str) -> bool:
        if not self.loopback:
            return True  # the token guards a non-loopback bind
        return name in self.names

    def _cookie_host(self, name: str) -> bool:
        """Whether the token cookie may be set on, and is accepted from, the host name ``name``."""
        if self.browser_name is None:
            return True  # no random name can reach this bind: the cookie lives on the address used
        return name == self.browser_name or not is_loopback(name)

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
        name, port = split_host(request.headers.get("host", ""))
        if not self._host_ok(name):
            return JSONResponse({"detail": "Unknown Host header: open the dashboard at the address 'tryouts ui' "
                                 "printed."}, status_code=421)
        given = request.query_params.get("token")
        if given is not None and request.method in ("GET", "HEAD"):
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return JSONResponse({"detail": "Wrong token: open the address 'tryouts ui' printed."}, status_code=403)
            if not self._cookie_host(name):
                return self._redirect_to_browser_name(request, port)
            return self._redirect_without_token(request)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            presented = auth[7:].strip()
        else:
            presented = request.cookies.get(self.cookie) if self._cookie_host(name) else None
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

    def _redirect_to_browser_name(self, request: Request, port: str) -> Response:
        """From 127.0.0.1/localhost/[::1] to the same path and query (token included) on the random name, at
        the port the browser used (a forwarded port stays forwarded). No cookie is set on a shared name."""
        where = f"{self.browser_name}:{port}" if port.isascii() and port.isdigit() else self.browser_name
        query = urlencode(request.query_params.multi_items())
        return RedirectResponse(f"{request.url.scheme}://{where}{_same_origin_path(request)}?{query}",
                                status_code=303)

    def _redirect_without_token(self, request: Request) -> Response:
        """To the same path without the token, as a relative reference that cannot leave this origin."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = _same_origin_path(request) + (("?" + urlencode(rest)) if rest else "")
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
