"""The browser-id cookie set by the server, HttpOnly: an ASGI middleware for Streamlit's `st.App` (see app/serve.py).

A Streamlit script cannot set HTTP headers: it runs over the websocket after the page has loaded, and a cookie
written by a script (`document.cookie`) can never be HttpOnly. This middleware gives every HTML page response
`Set-Cookie: spinescope_browser=<id>; HttpOnly; SameSite=Strict` (the id the browser sent, else a new random one),
so page scripts, and anything injected into them, cannot read it; the browser still sends it with the websocket
request, where `st.context.cookies` reads it (`app.session`), and the script-set fallback is never drawn.
"""
from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

BROWSER_COOKIE = "spinescope_browser"  # also the name app.session reads
COOKIE_DAYS = 400


def browser_cookie_header(value: str) -> bytes:
    """The Set-Cookie header value for a browser id: HttpOnly, SameSite=Strict, the whole site, 400 days."""
    return (f"{BROWSER_COOKIE}={value}; Path=/; Max-Age={COOKIE_DAYS * 86400}; HttpOnly; "
            "SameSite=Strict").encode("ascii")


def _sent_browser_id(headers) -> str | None:
    from spinescope.app.workspace import is_workspace_id

    for name, raw in headers:
        if name.lower() != b"cookie":
            continue
        try:
            jar = SimpleCookie(raw.decode("latin-1"))
        except CookieError:
            continue
        morsel = jar.get(BROWSER_COOKIE)
        if morsel is not None and is_workspace_id(morsel.value):
            return morsel.value
    return None


class BrowserIdCookie:
    """ASGI middleware: every HTML page response carries the browser-id cookie, HttpOnly: the id the browser sent
    (so one a script set before, readable by scripts, is replaced by the same id HttpOnly), else a new random one."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from spinescope.app.workspace import new_workspace_id

        value = _sent_browser_id(scope.get("headers", ())) or new_workspace_id()

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    message = {**message, "headers": headers + [(b"set-cookie", browser_cookie_header(value))]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
