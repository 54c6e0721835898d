"""``Settings``: every delivery option, validated once, frozen, and handed down to each part.

``configure()`` builds one ``Settings`` from its arguments; the Client, the dispatcher and the
transports read their options from it instead of re-listing them in their own signatures.
Validation happens in ``__post_init__``, so a ``Settings`` that exists is a valid one, however it
was made (``configure``, ``Settings(...)``, ``settings.replace(...)``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from instrument import _scopes
from instrument._errors import AnalyticsError, ConfigurationError
from instrument._events import check_agreement

ErrorHandler = Callable[[AnalyticsError], None]
Redactor = Callable[[str, dict[str, Any]], Mapping[str, Any]]

QUEUE_POLICIES = ("drop_newest", "drop_oldest")
#: The longest duration any option accepts, in seconds (one day). Longer waits overflow the
#: thread primitives on some platforms and are never what anyone meant.
MAX_SECONDS = 86_400.0

# The options of each kind, by name.
_POSITIVE_SECONDS = ("flush_interval", "timeout")
_NON_NEGATIVE_SECONDS = ("exit_timeout", "retry_window")
_POSITIVE_INTS = ("max_queue_size", "batch_size")
_NON_NEGATIVE_INTS = ("max_retries",)
_FLAGS = ("strict", "gzip", "sync")
_HOOKS = ("on_error", "redact")


@dataclass(frozen=True)
class Settings:
    """How events are validated, queued and delivered (see ``configure`` for each option).

    Frozen and validated when made: a bad value raises ConfigurationError naming the option (and
    never showing a secret such as a password in ``host``). ``replace(**changes)`` returns a
    validated copy. The write key is not a setting: it goes to the Segment transport only.
    """

    host: str | None = None
    strict: bool = False
    on_error: ErrorHandler | None = None
    wire_keys: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    redact: Redactor | None = None
    max_queue_size: int = 10_000
    #: Bound of the encoded events waiting for the Segment sender, in bytes (None: 32 MiB). Past it a
    #: batch is dropped as queue_full. Enforced by SegmentTransport, where sizes are known for free.
    max_queue_bytes: int | None = None
    queue_policy: str = "drop_newest"
    flush_interval: float = 0.5
    batch_size: int = 100
    exit_timeout: float = 5.0
    timeout: float = 10.0
    max_retries: int = 10
    retry_window: float = 300.0
    gzip: bool = False
    sync: bool = False

    def __post_init__(self) -> None:
        for name in _FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, "must be True or False", getattr(self, name))
        for name in _HOOKS:
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise _bad(name, "must be callable or None", hook)
        for name in _POSITIVE_INTS + _NON_NEGATIVE_INTS:
            _check_int(name, getattr(self, name), minimum=1 if name in _POSITIVE_INTS else 0)
        if self.max_queue_bytes is not None:
            _check_int("max_queue_bytes", self.max_queue_bytes, minimum=1)
        for name in _POSITIVE_SECONDS + _NON_NEGATIVE_SECONDS:
            _check_seconds(name, getattr(self, name), positive=name in _POSITIVE_SECONDS)
        if self.queue_policy not in QUEUE_POLICIES:
            raise _bad("queue_policy", "must be 'drop_newest' or 'drop_oldest'", self.queue_policy, show=True)
        if self.host is not None:
            _check_host(self.host)
        # A read-only copy: the caller's dict may change later, the settings must not.
        object.__setattr__(self, "wire_keys", MappingProxyType(_check_wire_keys(self.wire_keys)))

    @property
    def drop_oldest(self) -> bool:
        """True when a full queue drops its oldest event to make room (``queue_policy="drop_oldest"``)."""
        return self.queue_policy == "drop_oldest"

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` applied. Raises ConfigurationError for a bad value."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(f"unknown setting(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


def _bad(name: str, rule: str, value: object, *, show: bool = False) -> ConfigurationError:
    # The type always, the value only when it cannot be a secret (numbers, policy names).
    shown = f"{value!r:.60}" if show else type(value).__name__
    return ConfigurationError(f"configure: {name} {rule}, got {shown}")


def _check_int(name: str, value: object, *, minimum: int) -> None:
    # bool is an int subclass: True is not a queue size.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(name, "must be an int", value)
    if value < minimum:
        raise _bad(name, f"must be >= {minimum}", value, show=True)


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _bad(name, "must be a number of seconds (int or float)", value)
    if not math.isfinite(value):
        raise _bad(name, "must be a finite number of seconds", value, show=True)
    if value < 0 or (positive and value == 0):
        raise _bad(name, "must be > 0" if positive else "must be >= 0", value, show=True)
    if value > MAX_SECONDS:
        raise _bad(name, f"must be at most {MAX_SECONDS:.0f} seconds", value, show=True)


def _check_host(host: object) -> None:
    """Refuse every host the sender could not build a request for; the error never repeats the URL."""
    if not isinstance(host, str):
        raise _bad("host", "must be an http(s) URL as a str", host)
    # Whitespace and control characters first: urlsplit drops some (tab, newline) and keeps others
    # (space, NUL), and the sender would meet them only on its thread, long after configure().
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in host):
        raise ConfigurationError("configure: host must not contain whitespace or control characters")
    if "@" in host:
        # user:password@ (also without a scheme, where a parser would take the user for the scheme).
        # Never echo the URL: it holds a password. The write key is the credential Segment uses.
        raise ConfigurationError(
            "configure: host must not contain credentials (user:password@); the write key authenticates"
        )
    try:
        parts = urlsplit(host)
    except ValueError:
        raise ConfigurationError("configure: host is not a valid URL (expected http(s)://host[:port])") from None
    try:
        port = parts.port  # parsed on access: ValueError for a port that is not a number or out of range
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https"):
        # Not even the scheme is shown: "user:password" without an @ parses as scheme "user".
        raise ConfigurationError("configure: host must be an http:// or https:// URL")
    if port == 0 or (port is not None and not parts.netloc.rpartition(":")[2].isascii()):
        raise ConfigurationError("configure: host has an invalid port (1-65535, ASCII digits)")
    if parts.query or parts.fragment or host.endswith(("?", "#")):
        raise ConfigurationError("configure: host must not have a query or fragment (the API path is appended)")
    if not parts.path.isascii():
        raise ConfigurationError("configure: host path must be ASCII (percent-encode it)")
    _check_host_name(parts.hostname, parts.netloc)


def _check_host_name(name: str | None, netloc: str) -> None:
    if not name:
        raise ConfigurationError("configure: host must name a host (http(s)://host[:port])")
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            raise ConfigurationError("configure: host has an invalid IPv6 address in brackets") from None
        return
    # What the sender puts in the Host header (as http.client does): ASCII as is, anything else as IDNA.
    ok = all(ch.isalnum() or ch in "-._" for ch in name) if name.isascii() else _idna(name)
    if not ok:
        raise ConfigurationError("configure: host has an invalid host name")


def _idna(name: str) -> bool:
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


def _check_wire_keys(wire_keys: object) -> dict[str, str]:
    """The renames as given, once ``_scopes.check_wire_keys`` has found them valid (known property
    fields, non-empty keys, no two fields sent under one key) and they agree with every catalog's
    renames (one process, one wire format). Raises ConfigurationError."""
    if not isinstance(wire_keys, Mapping):
        raise _bad("wire_keys", "must be a mapping of scope field -> wire key", wire_keys)
    _scopes.check_wire_keys(wire_keys, "configure")
    check_agreement(wire_keys, "configure")
    return dict(wire_keys)
