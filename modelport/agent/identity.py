"""The agent's Ed25519 identity file, read and written exactly as usepod-agent does.

The format is usepod-agent's (0.3.x `src/identity.rs`), so one file serves both agents:

    -----BEGIN USEPOD AGENT KEY-----
    version: 1
    created: <RFC 3339 time>
    secret: <std base64 of the 32-byte seed>
    public: <std base64 of the 32-byte public key>
    provider_id: <id>                      (only once a hub has given one)
    -----END USEPOD AGENT KEY-----

It is made on first use, owner-only (0600). A file whose public key does not match its
secret is refused; one that others can read loads with a warning, as usepod-agent does.
Unlike usepod-agent, every write goes to a temporary 0600 file renamed into place, so the
secret is never readable by others, not even for a moment, and a crash mid-write leaves the
old file whole.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.agent.config import expand_home

__all__ = ["Identity", "IdentityError", "expand_key_path", "load_or_create"]

log = logging.getLogger("modelport.agent")

FORMAT_VERSION = 1
HEADER = "-----BEGIN USEPOD AGENT KEY-----"
FOOTER = "-----END USEPOD AGENT KEY-----"
KEY_BYTES = 32


class IdentityError(Exception):
    """An identity file that cannot be used; the message names the file and what is wrong."""


def expand_key_path(key_path: str) -> Path:
    """`[identity] key_path` as a path: `~` and `~/...` are the home directory, as
    usepod-agent's `expanded_key_path` reads them; anything else is taken as written."""
    return expand_home(key_path)


class Identity:
    """An Ed25519 key pair, where it is kept, and the provider id a hub gave it."""

    def __init__(
        self,
        path: Path,
        key: Ed25519PrivateKey,
        *,
        created: datetime,
        created_text: str,
        provider_id: str | None = None,
    ) -> None:
        self.path = path
        self.created = created
        self.provider_id = provider_id
        self._key = key
        # Written back as it was read, so a rewrite keeps usepod-agent's nanoseconds.
        self._created_text = created_text

    @property
    def public_key(self) -> bytes:
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode("ascii")

    def sign_b64(self, message: bytes) -> str:
        """The signature over `message` (the raw nonce bytes, for auth), std base64."""
        return base64.b64encode(self._key.sign(message)).decode("ascii")

    def set_provider_id(self, provider_id: str) -> None:
        """Keep the id a hub gave (auth_ok, or setup's pairing) in the file, mode 0600."""
        if not provider_id or "\n" in provider_id or "\r" in provider_id:
            raise IdentityError(f"identity {self.path}: provider_id must be one non-empty line")
        self.provider_id = provider_id
        _write_owner_only(self.path, self._serialize())

    def _serialize(self) -> str:
        seed = self._key.private_bytes_raw()
        lines = [
            HEADER,
            f"version: {FORMAT_VERSION}",
            f"created: {self._created_text}",
            f"secret: {base64.b64encode(seed).decode('ascii')}",
            f"public: {self.public_key_b64}",
        ]
        if self.provider_id is not None:
            lines.append(f"provider_id: {self.provider_id}")
        lines.append(FOOTER)
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:  # never the secret
        return f"Identity(path={str(self.path)!r}, public_key={self.public_key_b64!r})"


def load_or_create(path: Path) -> Identity:
    """The identity at `path`, made (with its parent directories) when there is none."""
    if path.exists():
        return load(path)
    return create(path)


def create(path: Path) -> Identity:
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(mode=0o700, parents=True)
    created = datetime.now(UTC)
    identity = Identity(
        path, Ed25519PrivateKey.generate(), created=created, created_text=created.isoformat()
    )
    _write_owner_only(path, identity._serialize())
    log.info("generated a new agent identity at %s", path)
    return identity


def load(path: Path) -> Identity:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IdentityError(f"identity {path}: cannot read: {reason}") from None
    try:
        identity = parse(raw, path)
    except ValueError as exc:
        raise IdentityError(f"identity {path}: {exc}") from None
    _warn_if_others_can_read(path)
    return identity


def parse(raw: str, path: Path) -> Identity:
    """identity.rs `parse` and `load`: the block between header and footer, checked.

    Raises ValueError saying what is wrong; unknown `key: value` lines are skipped (the
    format's room to grow, as usepod-agent reads it).
    """
    fields = _fields(raw)
    version = fields.get("version")
    if version is None:
        raise ValueError("missing `version`")
    if not version.isdigit():
        raise ValueError(f"`version` is not a number: {version!r}")
    if int(version) != FORMAT_VERSION:
        raise ValueError(f"unsupported identity format version {version}")
    for name in ("created", "secret", "public"):
        if name not in fields:
            raise ValueError(f"missing `{name}`")
    created = _created(fields["created"])
    seed = _key_bytes(fields["secret"], "secret")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    identity = Identity(
        path,
        key,
        created=created,
        created_text=fields["created"],
        provider_id=fields.get("provider_id"),
    )
    if _b64(fields["public"], "public") != identity.public_key:
        raise ValueError("the public key does not match the secret key; refusing to load")
    return identity


def public_fields(path: Path) -> dict[str, str]:
    """The identity file's `key: value` fields but the secret, read as `load` reads them
    and never created: what a status page may show. Raises OSError or ValueError."""
    fields = _fields(path.read_text(encoding="utf-8"))
    fields.pop("secret", None)
    return fields


def _fields(raw: str) -> dict[str, str]:
    lines = [line.strip() for line in raw.splitlines()]
    if HEADER not in lines:
        raise ValueError(f"missing header {HEADER}")
    if FOOTER not in lines:
        raise ValueError(f"missing footer {FOOTER}")
    start, end = lines.index(HEADER), lines.index(FOOTER)
    if end <= start:
        raise ValueError("malformed identity file: footer before header")
    fields: dict[str, str] = {}
    for number, line in enumerate(lines[start + 1 : end], start=start + 2):
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:  # the line itself is not quoted: it may be a secret
            raise ValueError(f"malformed line {number} (expected `key: value`)")
        fields[name.strip()] = value.strip()
    return fields


def _created(text: str) -> datetime:
    try:
        created = datetime.fromisoformat(text)
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise ValueError(f"`created` is not an RFC 3339 time: {text!r}")
    return created.astimezone(UTC)


def _b64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"`{name}` is not standard base64") from None


def _key_bytes(text: str, name: str) -> bytes:
    decoded = _b64(text, name)
    if len(decoded) != KEY_BYTES:
        raise ValueError(f"`{name}` must decode to {KEY_BYTES} bytes, got {len(decoded)}")
    return decoded


def _write_owner_only(path: Path, text: str) -> None:
    """Write `text` to a new 0600 file beside `path`, then rename it over `path`."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask or a stale file said
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise IdentityError(f"identity {path}: cannot write: {exc.strerror or exc}") from None


def _warn_if_others_can_read(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        log.warning(
            "identity file %s is accessible to other users (mode %o); chmod 600 it", path, mode
        )
