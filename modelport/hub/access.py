"""Who may join the hub: keys in `[hub] agent_keys`, keys in the agents file, and
enrollment codes.

The agents file is what `modelport hub add-agent` and `hub revoke` write, and where the hub
records each key an enrollment code admitted (so that agent is admitted from then on,
without the code: usepod-agent sends it only while it has no provider_id, ws_client.rs).
The CLI and a running gateway both change it: every change is a read-modify-write under an
advisory lock on a sibling `.lock` file, written to a temporary file (mode 0600) and
renamed over the old one, so a reader never sees half a file. The gateway re-reads it when
its stat signature changes, so `hub revoke` takes effect without a restart:
`Access.revoked(pubkey)` is the check the hub makes on each heartbeat of a connected agent.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec

from modelport.config import HubConfig, agent_key_problem, parse_rfc3339

__all__ = [
    "Access",
    "AccessDenied",
    "AgentRecord",
    "AgentsFile",
    "provider_id_for",
]

log = logging.getLogger("modelport.hub.access")
T = TypeVar("T")
FILE_VERSION = 1


class AccessDenied(Exception):
    """An agent that may not join; `reason` is what `auth_failed` tells it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def provider_id_for(pubkey_b64: str) -> str:
    """The stable id of an agent's key: "prov_" + 24 hex digits of sha256(raw key).

    Raises ValueError for a key that is not standard base64 of 32 bytes."""
    problem = agent_key_problem(pubkey_b64)
    if problem is not None:
        raise ValueError(problem)
    raw = base64.b64decode(pubkey_b64, validate=True)
    return "prov_" + hashlib.sha256(raw).hexdigest()[:24]


def now_rfc3339(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the file ----------------------------------------------------------------------------


class AgentRecord(msgspec.Struct, kw_only=True):
    """One agent the file knows: added by the CLI or enrolled with a code."""

    pubkey: str
    provider_id: str
    name: str = ""
    added_at: str = ""  # RFC 3339
    revoked_at: str | None = None
    via: str = "add-agent"  # or "enrollment code"


class UsedCode(msgspec.Struct, kw_only=True):
    """A single-use code once spent. Only its digest is kept: the file admits no one."""

    code_sha256: str
    pubkey: str
    used_at: str


class AgentsData(msgspec.Struct, kw_only=True):
    version: int = FILE_VERSION
    agents: list[AgentRecord] = msgspec.field(default_factory=list)
    used_codes: list[UsedCode] = msgspec.field(default_factory=list)

    def find(self, pubkey_or_id: str) -> AgentRecord | None:
        return next((a for a in self.agents if pubkey_or_id in (a.pubkey, a.provider_id)), None)


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class AgentsFile:
    """The agents file: read it, or change it under the lock and replace it atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> AgentsData:
        """What the file says now; an empty list when it does not exist yet."""
        try:
            data = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return AgentsData()
        try:
            return msgspec.json.decode(data, type=AgentsData)
        except msgspec.DecodeError as exc:
            raise ValueError(f"agents file {self.path} is not valid: {exc}") from None

    def signature(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced or written; None when there is none."""
        try:
            st = self.path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def update(self, change: Callable[[AgentsData], T]) -> T:
        """Read, apply `change` (which edits the data in place), write back: all under the
        lock, so a CLI and a gateway writing at once lose neither's change."""
        with self._locked():
            data = self.read()
            result = change(data)
            self._write(data)
        return result

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, data: AgentsData) -> None:
        body = msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)  # mkstemp makes it 0600 already; say it where it matters
            with os.fdopen(fd, "wb") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


# -- the CLI's changes -----------------------------------------------------------------


def add_agent(
    path: Path, pubkey: str, *, name: str = "", clock: Callable[[], float] = time.time
) -> AgentRecord:
    """Admit `pubkey` (re-admitting it when it was revoked). ValueError for a bad key."""
    provider_id = provider_id_for(pubkey)

    def change(data: AgentsData) -> AgentRecord:
        record = data.find(pubkey)
        if record is None:
            record = AgentRecord(
                pubkey=pubkey, provider_id=provider_id, added_at=now_rfc3339(clock)
            )
            data.agents.append(record)
        record.revoked_at = None
        if name:
            record.name = name
        return record

    return AgentsFile(path).update(change)


def revoke_agent(
    path: Path,
    who: str,
    *,
    config_keys: tuple[str, ...] = (),
    clock: Callable[[], float] = time.time,
) -> AgentRecord:
    """Revoke the agent with this public key or provider id; a key admitted by the config
    file gets a revoked entry here (the config still lists it, the file overrules it).
    LookupError when no agent has that key or id."""
    in_config = {provider_id_for(k): k for k in config_keys if agent_key_problem(k) is None}

    def change(data: AgentsData) -> AgentRecord:
        record = data.find(who)
        if record is None:
            pubkey = who if who in in_config.values() else in_config.get(who)
            if pubkey is None:
                raise LookupError(f"no agent with public key or provider id {who!r}")
            record = AgentRecord(pubkey=pubkey, provider_id=provider_id_for(pubkey), via="config")
            data.agents.append(record)
        if record.revoked_at is None:
            record.revoked_at = now_rfc3339(clock)
        return record

    return AgentsFile(path).update(change)


# -- the hub's check ---------------------------------------------------------------------


class Access:
    """Answers `admit` for each agent that authenticates, and `revoked` for each connected
    agent on its heartbeats. Sync and quick: one stat of the agents file per call, a read
    when it changed, a write only when a code enrolls a new key."""

    def __init__(
        self, config: HubConfig, agents_file: Path, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.file = AgentsFile(agents_file)
        self.clock = clock
        self._config_keys = frozenset(config.agent_keys)
        self._codes = config.enrollment_codes
        self._data = AgentsData()
        self._signature: tuple[int, int, int] | None = None
        self._stat_problem: str | None = None  # the last failed stat, said once

    def admit(self, pubkey_b64: str, enrollment_code: str | None) -> str:
        """The agent's provider_id, or AccessDenied saying why not."""
        problem = agent_key_problem(pubkey_b64)
        if problem is not None:
            raise AccessDenied(f"invalid key: {problem}")
        data = self._current()
        record = data.find(pubkey_b64)
        if record is not None and record.revoked_at is not None:
            raise AccessDenied("revoked key")  # a code does not undo a revocation
        if record is not None or pubkey_b64 in self._config_keys:
            return provider_id_for(pubkey_b64)
        if not enrollment_code:
            raise AccessDenied("unknown key")
        return self._enroll(pubkey_b64, enrollment_code)

    def revoked(self, pubkey_b64: str) -> bool:
        """Whether a connected agent has been revoked since it joined (the file re-read
        when it changed): the hub then closes its connection."""
        record = self._current().find(pubkey_b64)
        return record is not None and record.revoked_at is not None

    def agents(self) -> list[AgentRecord]:
        """The file's agents, as last read."""
        return list(self._current().agents)

    def _enroll(self, pubkey: str, code: str) -> str:
        entry = next(
            (c for c in self._codes if hmac.compare_digest(c.code.encode(), code.encode())), None
        )
        if entry is None:
            raise AccessDenied("enrollment code unknown")
        expires = entry.expires_at
        if expires is not None and self.clock() >= parse_rfc3339(expires).timestamp():
            raise AccessDenied("enrollment code expired")
        digest = code_digest(entry.code)
        provider_id = provider_id_for(pubkey)

        def change(data: AgentsData) -> None:
            # Checked again under the lock: two agents racing for one code, one wins.
            used = next((u for u in data.used_codes if u.code_sha256 == digest), None)
            if not entry.reusable and used is not None and used.pubkey != pubkey:
                raise AccessDenied("enrollment code used")
            stamp = now_rfc3339(self.clock)
            if not entry.reusable and used is None:
                data.used_codes.append(UsedCode(code_sha256=digest, pubkey=pubkey, used_at=stamp))
            if data.find(pubkey) is None:
                data.agents.append(
                    AgentRecord(
                        pubkey=pubkey,
                        provider_id=provider_id,
                        added_at=stamp,
                        via="enrollment code",
                    )
                )

        try:
            self.file.update(change)
        except OSError as exc:  # admitted but unrecorded would be refused at its next connect
            log.error("cannot record an enrolled agent in %s: %s", self.file.path, exc)
            raise AccessDenied("enrollment failed: the hub cannot record the agent") from None
        return provider_id

    def _current(self) -> AgentsData:
        try:
            signature = self.file.signature()
        except OSError as exc:  # unreadable directory: keep what we knew; say so once
            problem = f"cannot stat the agents file {self.file.path}: {exc}"
            if problem != self._stat_problem:
                log.error("%s", problem)
                self._stat_problem = problem
            return self._data
        self._stat_problem = None
        if signature != self._signature:
            try:
                self._data = self.file.read()
            except (OSError, ValueError) as exc:  # keep what we knew; say so once per change
                log.error("%s; keeping the agents read before", exc)
            self._signature = signature
        return self._data
