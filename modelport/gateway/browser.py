"""Browser safety: which Origins and Host headers the gateway answers, and CORS for them.

A gateway on loopback without keys (the default) trusts whoever can connect. A web page
in the user's browser can connect too: a `text/plain` POST needs no preflight, so any site
could spend tokens, and DNS rebinding (a name the attacker controls, re-pointed at
127.0.0.1) makes the browser treat the gateway as that site's own origin. Two checks close
both, before keys are looked at and before any work:

- Host: the request must name the gateway the way a local client does (the bound address,
  `localhost`, `127.0.0.1`, `[::1]`, with the bound port) or a name in `allowed_hosts`.
  A rebinding page sends its own name and is refused. With a wildcard bind (0.0.0.0, ::;
  keys are required then) the gateway cannot know its names: only `allowed_hosts`, when
  set, restricts them.
- Origin: a request that carries one (only browsers send it) must come from the gateway's
  own origin or one in `allowed_origins` (`"*"`: any). Requests without Origin (SDKs,
  curl, coding agents) are not affected.

A refusal is a 403 in the path's dialect. An allowed Origin gets CORS: a preflight
(OPTIONS with Access-Control-Request-Method) is answered here with the methods and the
headers the SDKs send, and every answer names the origin in Access-Control-Allow-Origin.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from modelport.errors import AuthError

Refuse = Callable[[web.Request, AuthError], web.StreamResponse]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ANY = "*"
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
ALLOWED_METHODS = "GET, POST, HEAD, OPTIONS"
# Request headers a browser may send (OpenAI's and Anthropic's SDKs, Ollama's clients):
# what they send on every call, plus `x-stainless-*` (the SDKs' platform headers).
ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "x-api-key",
        "x-request-id",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "openai-organization",
        "openai-project",
        "openai-beta",
        "idempotency-key",
    }
)
ALLOWED_HEADER_PREFIXES = ("x-stainless-",)
# Answer headers a page may read (the rest of CORS's safelist is implicit).
EXPOSED_HEADERS = "x-request-id, x-modelport-backend, retry-after"
PREFLIGHT_MAX_AGE = "600"


class BrowserPolicy:
    """The Hosts and Origins a gateway answers; `bind` adds its own once it listens."""

    def __init__(self, origins: Iterable[str] = (), hosts: Iterable[str] = ()) -> None:
        origins = [o.strip().lower().rstrip("/") for o in origins]
        self.any_origin = ANY in origins
        self.origins = {o for o in origins if o != ANY}
        hosts = [h.strip().lower() for h in hosts]
        self.any_host = ANY in hosts
        self.hosts = {h for h in hosts if h != ANY and ":" in h.rpartition("]")[2]}
        self.host_names = {h for h in hosts if h != ANY and h not in self.hosts}
        self._configured_hosts = bool(hosts)
        self._own_origins: set[str] = set()

    def bind(self, host: str, port: int) -> None:
        """The gateway listens on `host`:`port`: its own names become allowed Hosts."""
        names = list(LOCAL_NAMES)
        if _is_wildcard(host):
            # Every name of this machine reaches it; keys guard it (a wildcard bind needs
            # them). Unless allowed_hosts says which, any Host is answered.
            self.any_host = self.any_host or not self._configured_hosts
        else:
            names.append(_host_name(host))
        for name in names:
            # At the bound port, or with none (a hand-written `Host: 127.0.0.1`): a
            # rebinding page sends its own domain as Host, never these.
            self.hosts.add(f"{name}:{port}")
            self.hosts.add(name)
            self._own_origins.add(f"http://{name}:{port}" if port != 80 else f"http://{name}")

    def host_allowed(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return True  # browsers always send Host; a request without one is no rebinding
        if host in self.hosts:
            return True  # the common case, a Host as the gateway was bound: no copies made
        host = host.strip().lower()
        if host in self.hosts:
            return True
        name = host.rpartition(":")[0] if ":" in host.rpartition("]")[2] else host
        return name in self.host_names

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        return self.any_origin or origin in self.origins or origin in self._own_origins


def browser_guard(policy: BrowserPolicy, refuse: Refuse) -> Middleware:
    """The middleware: Host and Origin checked, preflights answered, before keys and work."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not policy.host_allowed(request.headers.get("Host")):
            return refuse(
                request,
                AuthError("this Host is not served here (see server.allowed_hosts)", status=403),
            )
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        if not policy.origin_allowed(origin):
            why = "requests from this Origin are not allowed (see server.allowed_origins)"
            return refuse(request, AuthError(why, status=403))
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _preflight(request)
        return await handler(request)

    return guard


def _preflight(request: web.Request) -> web.StreamResponse:
    """204 with what may be sent; the origin itself is added by `cors_headers`."""
    asked = request.headers.get("Access-Control-Request-Headers", "")
    wanted = [h.strip().lower() for h in asked.split(",") if h.strip()]
    allowed = [h for h in wanted if h in ALLOWED_HEADERS or h.startswith(ALLOWED_HEADER_PREFIXES)]
    headers = {
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ", ".join(allowed or sorted(ALLOWED_HEADERS)),
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }
    return web.Response(status=204, headers=headers)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: an answer to an allowed Origin names it (streams included; a
    refused Origin never gets here with its headers, the guard answered it)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return
    policy: BrowserPolicy | None = request.app.get(POLICY)
    if policy is None or not policy.origin_allowed(origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    response.headers.add("Vary", "Origin")


POLICY = web.AppKey("browser_policy", BrowserPolicy)


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _host_name(host: str) -> str:
    """A bind address as it appears in a Host header (IPv6 in brackets)."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host.lower()
    except ValueError:
        return host.lower()
