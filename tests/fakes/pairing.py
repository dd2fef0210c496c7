"""FakePairing: the coordinator's two pairing endpoints, a real aiohttp server on 127.0.0.1.

The shapes are what usepod-agent's `src/setup.rs` (0.3.x) sends and reads, its serde types:
- `POST /v1/host/pair/issue {"agent_pubkey": "<b64>"}` -> `IssueResponse {pair_code,
  poll_token, expires_at}`;
- `POST /v1/host/pair/poll {"poll_token", "capabilities": {"backends": [{kind, url,
  models}], "agent_version"}}` -> `{"status": "pending"}`, `{"status": "expired"}`, or
  `{"status": "active", "host_token", "provider_id", "model_config": [ActivatedModel
  {model_id, input_per_1m, output_per_1m, max_concurrent}]}`.
The coordinator's own code is not public; what it does between those answers (a code
the operator types on a dashboard) is played by `claim`, or by `activate_after` polls.
Nothing here imports modelport.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web


class FakePairing:
    def __init__(
        self,
        *,
        provider_id: str = "prov-paired-1",
        host_token: str = "ht_live_0123456789abcdefghijklmnopqrstuv",
        model_config: list[dict[str, Any]] | None = None,
        activate_after: int | None = None,
        expire_after: int | None = None,
        issue_status: int = 200,
    ) -> None:
        self.provider_id = provider_id
        self.host_token = host_token
        self.model_config = model_config if model_config is not None else []
        self.activate_after = activate_after  # polls answered "pending" before "active"
        self.expire_after = expire_after  # polls answered "pending" before "expired"
        self.issue_status = issue_status  # anything but 200: the issue call fails so
        self.issues: list[dict[str, Any]] = []  # the bodies of /issue, in order
        self.polls: list[dict[str, Any]] = []  # the bodies of /poll, in order
        self.poll_times: list[float] = []  # loop time of each poll
        self.url = ""
        self._codes: dict[str, str] = {}  # poll_token -> pair_code
        self._claimed: set[str] = set()
        self._expired: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/host/pair/issue", self._issue)
        app.router.add_post("/v1/host/pair/poll", self._poll)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def aclose(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakePairing:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- what the operator does on the dashboard -------------------------------------------

    def claim(self, pair_code: str) -> None:
        """The operator typed `pair_code` and pressed Activate."""
        tokens = [t for t, code in self._codes.items() if code == pair_code]
        if not tokens:
            raise KeyError(f"no such pair code {pair_code!r}")
        self._claimed.update(tokens)

    def expire_all(self) -> None:
        self._expired.update(self._codes)

    @property
    def pair_codes(self) -> list[str]:
        return list(self._codes.values())

    # -- the endpoints ------------------------------------------------------------------

    async def _issue(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.issues.append(body)
        if self.issue_status != 200:
            return web.json_response({"error": "issue refused"}, status=self.issue_status)
        if not isinstance(body, dict) or not isinstance(body.get("agent_pubkey"), str):
            return web.json_response({"error": "agent_pubkey required"}, status=400)
        alphabet = string.ascii_uppercase + string.digits
        code = "".join(secrets.choice(alphabet) for _ in range(4))
        code += "-" + "".join(secrets.choice(alphabet) for _ in range(4))
        token = "pt_" + secrets.token_hex(16)
        self._codes[token] = code
        expires = (datetime.now(UTC) + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
        return web.json_response({"pair_code": code, "poll_token": token, "expires_at": expires})

    async def _poll(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.polls.append(body)
        self.poll_times.append(asyncio.get_running_loop().time())
        token = body.get("poll_token") if isinstance(body, dict) else None
        if token not in self._codes:
            return web.json_response({"error": "unknown poll_token"}, status=404)
        polls = sum(1 for p in self.polls if p.get("poll_token") == token)
        if token in self._expired or (self.expire_after is not None and polls > self.expire_after):
            return web.json_response({"status": "expired"})
        if token in self._claimed or (
            self.activate_after is not None and polls > self.activate_after
        ):
            return web.json_response(
                {
                    "status": "active",
                    "host_token": self.host_token,
                    "provider_id": self.provider_id,
                    "model_config": self.model_config,
                }
            )
        return web.json_response({"status": "pending"})
