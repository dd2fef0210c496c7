"""/provider/connect, the agent's side of the socket as the hub sees it: the handshake and
the limits every frame is read under.

The handshake is usepod's (ws_client.rs `authenticate`): the hub sends `auth_challenge` with
a fresh random 32-byte nonce; the agent answers `auth_response` with its Ed25519 public key
and a signature over the raw nonce bytes; the hub says `auth_ok {provider_id}` or
`auth_failed {reason}`. A nonce is made per connection and never reused, so a signature
captured from one connection is worthless on another (a replay fails verification).

Limits (HubConfig): one message at most `max_frame_kb` (aiohttp closes with 1009 past it),
at most `max_frames_per_s` frames a second on average (a token bucket holding one second's
worth; past it: Close 1008), and an unauthenticated connection may stay `auth_timeout_s`.
Every frame is JSON text (usepod-agent refuses binary frames during the handshake).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelport.config.schema import HubConfig
from modelport.wire.provider import (
    AuthChallenge,
    AuthFailed,
    AuthOk,
    AuthResponse,
    FrameError,
    decode_agent_frame,
    encode,
)

log = logging.getLogger("modelport.hub")

NONCE_BYTES = 32
CLOSE_POLICY = 1008  # RFC 6455: a message that violates the endpoint's policy


class Admission(Protocol):
    """Who may join (`modelport.hub.access.Access`): a provider id for a key, or
    AccessDenied (an exception with a `reason`); and who may stay."""

    def admit(self, pubkey_b64: str, enrollment_code: str | None) -> str: ...

    def revoked(self, pubkey_b64: str) -> bool:
        """Whether an agent that joined has been revoked since (the hub then closes it)."""
        ...


@dataclass(frozen=True)
class Agent:
    """Who authenticated: what auth_response said, and the id access gave it."""

    provider_id: str
    auth: AuthResponse


class FrameRate:
    """A token bucket: `per_s` frames a second on average, bursts up to one second's worth."""

    def __init__(self, per_s: int) -> None:
        self.per_s = max(1, per_s)
        self._tokens = float(self.per_s)
        self._at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.per_s, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def socket_for(config: HubConfig, *, ping_s: float | None) -> web.WebSocketResponse:
    """The server side of one agent's socket, with the message size limit and Ping every
    `ping_s` (usepod-agent answers Ping; a socket that stops answering is closed)."""
    return web.WebSocketResponse(
        max_msg_size=config.max_frame_kb * 1024,
        heartbeat=ping_s,
        autoping=True,
    )


async def send(ws: web.WebSocketResponse, frame: AuthChallenge | AuthOk | AuthFailed) -> None:
    await ws.send_str(encode(frame).decode())


async def authenticate(
    ws: web.WebSocketResponse, access: Admission, config: HubConfig, rate: FrameRate, address: str
) -> Agent | None:
    """Challenge, verify, admit. On success auth_ok is sent; on failure auth_failed (when
    the agent answered at all) and the socket is closed, and None comes back."""
    nonce = os.urandom(NONCE_BYTES)
    try:
        async with asyncio.timeout(config.auth_timeout_s):
            await send(ws, AuthChallenge(nonce))
            auth = await _auth_response(ws, rate)
    except TimeoutError:
        log.warning("agent at %s sent no auth_response within %gs", address, config.auth_timeout_s)
        await ws.close(code=CLOSE_POLICY, message=b"auth timeout")
        return None
    except _Refused as refused:
        log.warning("agent at %s refused: %s", address, refused.reason)
        await _refuse(ws, refused.reason, refused.answer)
        return None
    reason = verify(auth, nonce)
    if reason is None:
        try:
            # A thread: it stats (and, enrolling, writes under a lock) the agents file.
            provider_id = await asyncio.to_thread(access.admit, auth.pubkey, auth.enrollment_code)
        except Exception as exc:  # AccessDenied, by its reason; anything else says no too
            reason = str(getattr(exc, "reason", "") or "access denied")
            if not hasattr(exc, "reason"):
                log.exception("access check failed for agent at %s", address)
    if reason is not None:
        log.warning("agent at %s (key %s) refused: %s", address, auth.pubkey[:12], reason)
        await _refuse(ws, reason, True)
        return None
    await send(ws, AuthOk(provider_id))
    return Agent(provider_id, auth)


class _Refused(Exception):
    def __init__(self, reason: str, *, answer: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer  # whether auth_failed can still be sent


async def _auth_response(ws: web.WebSocketResponse, rate: FrameRate) -> AuthResponse:
    """The first frame, which must be auth_response (Ping and Pong are aiohttp's)."""
    msg = await ws.receive()
    if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        raise _Refused(f"closed during the handshake ({msg.type.name})", answer=False)
    if not rate.allow():
        raise _Refused("frame rate limit", answer=False)
    if msg.type is not WSMsgType.TEXT:
        raise _Refused("the handshake is JSON text")
    try:
        frame = decode_agent_frame(msg.data)
    except FrameError as exc:
        raise _Refused(f"malformed auth_response: {exc}") from None
    if not isinstance(frame, AuthResponse):
        raise _Refused("expected auth_response")
    return frame


def verify(auth: AuthResponse, nonce: bytes) -> str | None:
    """None when `auth` signs `nonce` with the key it names; else why not."""
    try:
        pubkey = base64.b64decode(auth.pubkey, validate=True)
        signature = base64.b64decode(auth.signature, validate=True)
    except (binascii.Error, ValueError):
        return "pubkey and signature must be standard base64"
    if len(pubkey) != 32 or len(signature) != 64:
        return "pubkey must be 32 bytes and signature 64 bytes"
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, nonce)
    except (InvalidSignature, ValueError):
        return "bad signature"
    return None


async def _refuse(ws: web.WebSocketResponse, reason: str, answer: bool) -> None:
    if answer and not ws.closed:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await send(ws, AuthFailed(reason))
    await ws.close(code=CLOSE_POLICY, message=b"auth failed")
