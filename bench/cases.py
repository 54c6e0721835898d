"""The benchmark cases: what each row of the table times, and the clients behind them.

Every case is one ``timeit`` statement (compiled into timeit's loop, so there is no extra call per
iteration) plus hooks run outside the timed loop: ``enter``/``leave`` bind a context around one round
(an analytics_scope, a PostHog context) and ``drain`` delivers what the round queued, so no queue fills
and no background work of one case spills into the next case's round.
"""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import wrapt

import instrument
from instrument import EventName, Track, analytics_scope, bind_scope, reset_scope, tracks

#: The event every emitting case sends, and its properties (the same on every path).
EVENT = "Cluster Provisioning Success"
USER_ID = 42
PROJECT_ID = 3
CLUSTER_ID = 5
CLUSTER_TYPE = "eks"
INFRA_ID = 7
WRITE_KEY = "bench-write-key"

#: Big enough that no round of any case can fill a queue (rounds are drained between them).
LARGE_QUEUE = 1_000_000


class Events(EventName):
    CLUSTER_PROVISIONING_SUCCESS = EVENT


class ClusterProvisioningSuccess(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    cluster_type: str
    infra_id: int


class ProjectMembership(instrument.ProjectGroup):
    role: str


ROLE = "admin"


def provision(cluster_type: str, infra_id: int) -> None:
    """The business function of every call-path case: does nothing, so only the wrapping is timed."""


def provision_fails(cluster_type: str, infra_id: int) -> None:
    raise ValueError("provisioning failed")


def _functools_wrap(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@wrapt.decorator
def _passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


def wrapt_passthrough(func: Callable[..., Any]) -> Callable[..., Any]:
    """A wrapt decorator that only calls through: the floor @tracks is built on."""
    wrapped: Callable[..., Any] = _passthrough(func)
    return wrapped


tracked_provision = tracks(ClusterProvisioningSuccess)(provision)
tracked_provision_fails = tracks(ClusterProvisioningSuccess)(provision_fails)


def _nothing() -> None:
    return None


@dataclass
class Case:
    """One row of the per-call table."""

    key: str
    label: str
    stmt: str
    namespace: dict[str, Any]
    enter: Callable[[], None] = _nothing
    leave: Callable[[], None] = _nothing
    drain: Callable[[], None] = _nothing
    where: str = ""  # one line on where the time goes (RESULTS.md)


@dataclass
class _Held:
    """Enter a context manager before a round and leave it after, outside the timed loop."""

    factory: Callable[[], AbstractContextManager[Any]]
    after_enter: Callable[[], None] = _nothing
    _stack: list[AbstractContextManager[Any]] = field(default_factory=list)

    def enter(self) -> None:
        cm = self.factory()
        cm.__enter__()
        self._stack.append(cm)
        self.after_enter()

    def leave(self) -> None:
        self._stack.pop().__exit__(None, None, None)


class _Bound:
    """bind_scope/reset_scope around a round: the three-level cluster scope, as a request binds it."""

    def __init__(self) -> None:
        self._tokens: list[contextvars.Token[dict[str, object]]] = []

    def enter(self) -> None:
        self._tokens.append(bind_scope(user_id=USER_ID, project_id=PROJECT_ID, cluster_id=CLUSTER_ID))

    def leave(self) -> None:
        reset_scope(self._tokens.pop())


#: Upload interval of every client in the per-call cases: short, so draining a partial batch between
#: rounds does not wait out the default 0.5 s (e2e keeps the defaults).
DRAIN_INTERVAL = 0.02


def configure_instrument(
    url: str, *, max_queue_size: int = LARGE_QUEUE, flush_interval: float = DRAIN_INTERVAL
) -> instrument.Client:
    """Point instrument at the local endpoint through its real Segment transport."""
    return instrument.configure(
        write_key=WRITE_KEY,
        host=url,
        max_queue_size=max_queue_size,
        flush_interval=flush_interval,
        on_error=lambda error: None,  # refusals are retried by the e2e producer; do not log each
    )


def segment_client(url: str, *, max_queue_size: int = LARGE_QUEUE, upload_interval: float = DRAIN_INTERVAL) -> Any:
    """The anchor: the raw Segment client, same endpoint, same batch size."""
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.CRITICAL)  # "queue is full" warnings in e2e
    return Client(WRITE_KEY, host=url, max_queue_size=max_queue_size, upload_interval=upload_interval)


def posthog_client(url: str) -> Any:
    """The peer: PostHog's client at the local endpoint (which answers its path with 404, never retried)."""
    from posthog.client import Client

    client = Client(
        "phc_bench_dummy_key",
        host=url,
        max_queue_size=LARGE_QUEUE,
        max_retries=0,
        flush_interval=DRAIN_INTERVAL,
        enable_local_evaluation=False,
        disable_geoip=True,
        timeout=5,
    )
    logging.getLogger("posthog").setLevel(logging.CRITICAL)  # after: the Client sets the level itself
    return client


@dataclass
class Clients:
    """The live clients of one run, closed by ``close``."""

    segment: Any
    posthog: Any

    def close(self) -> None:
        instrument.shutdown(10.0)
        self.segment.flush()
        self.segment.shutdown()
        self.posthog.shutdown()


def build(url: str) -> tuple[list[Case], Clients]:
    """Create the clients against ``url`` and return every per-call case, in table order."""
    configure_instrument(url)
    seg = segment_client(url)
    ph = posthog_client(url)
    clients = Clients(seg, ph)

    def drain_instrument() -> None:
        if not instrument.flush(60.0):
            raise RuntimeError("instrument.flush timed out between rounds")

    def drain_segment() -> None:
        seg.flush()

    def drain_posthog() -> None:
        ph.flush(60.0)

    import posthog
    import structlog

    def posthog_context() -> AbstractContextManager[Any]:
        cm: AbstractContextManager[Any] = posthog.new_context(capture_exceptions=False, client=ph)
        return cm

    def posthog_identify() -> None:
        posthog.identify_context(str(USER_ID))
        posthog.tag("project_id", PROJECT_ID)
        posthog.tag("cluster_id", CLUSTER_ID)

    ph_ctx = _Held(posthog_context, posthog_identify)
    scoped = _Bound()
    scoped_explicit = _Bound()
    var: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("bench_raw")
    fields = {"user_id": USER_ID, "project_id": PROJECT_ID, "cluster_id": CLUSTER_ID}
    args = {"CT": CLUSTER_TYPE, "ID": INFRA_ID}

    cases = [
        Case("bare", "bare call", "f(CT, ID)", {"f": provision, **args}, where="one Python call"),
        Case(
            "functools",
            "functools.wraps wrapper",
            "f(CT, ID)",
            {"f": _functools_wrap(provision), **args},
            where="two Python calls and an *args/**kwargs repack",
        ),
        Case(
            "wrapt",
            "wrapt pass-through",
            "f(CT, ID)",
            {"f": wrapt_passthrough(provision), **args},
            where="wrapt's C FunctionWrapper calling a Python wrapper that calls through",
        ),
        Case(
            "tracks_emit",
            "@tracks call, emits in 3-level scope",
            "f(CT, ID)",
            {"f": tracked_provision, **args},
            enter=scoped.enter,
            leave=scoped.leave,
            drain=drain_instrument,
            where="",
        ),
        Case(
            "track_explicit",
            "Track(...) + instrument.track()",
            "track(C(cluster_type=CT, infra_id=ID))",
            {"track": instrument.track, "C": ClusterProvisioningSuccess, **args},
            enter=scoped_explicit.enter,
            leave=scoped_explicit.leave,
            drain=drain_instrument,
        ),
        Case(
            "segment_track",
            "segment Client.track() (anchor)",
            "t(user_id=U, event=E, properties={'cluster_type': CT, 'infra_id': ID, 'project_id': P, 'cluster_id': K})",
            {"t": seg.track, "U": USER_ID, "E": EVENT, "P": PROJECT_ID, "K": CLUSTER_ID, **args},
            drain=drain_segment,
        ),
        Case(
            "group_explicit",
            "Group(...) + instrument.group()",
            "group(G(role=R))",
            {"group": instrument.group, "G": ProjectMembership, "R": ROLE},
            enter=scoped_explicit.enter,
            leave=scoped_explicit.leave,
            drain=drain_instrument,
        ),
        Case(
            "segment_group",
            "segment Client.group() (anchor)",
            "g(user_id=U, group_id=P, traits={'role': R})",
            {"g": seg.group, "U": USER_ID, "P": str(PROJECT_ID), "R": ROLE},
            drain=drain_segment,
        ),
        Case(
            "posthog_capture",
            "posthog capture in new_context (peer)",
            "c(E, properties={'cluster_type': CT, 'infra_id': ID})",
            {"c": ph.capture, "E": EVENT, **args},
            enter=ph_ctx.enter,
            leave=ph_ctx.leave,
            drain=drain_posthog,
        ),
        Case(
            "scope",
            "analytics_scope enter/exit (3 fields)",
            "with s(user_id=U, project_id=P, cluster_id=K):\n    pass",
            {"s": analytics_scope, "U": USER_ID, "P": PROJECT_ID, "K": CLUSTER_ID},
        ),
        Case(
            "structlog",
            "structlog bound_contextvars (3 keys)",
            "with b(user_id=U, project_id=P, cluster_id=K):\n    pass",
            {"b": structlog.contextvars.bound_contextvars, "U": USER_ID, "P": PROJECT_ID, "K": CLUSTER_ID},
        ),
        Case(
            "contextvar",
            "raw ContextVar set/reset",
            "t = v.set(d)\nv.reset(t)",
            {"v": var, "d": fields},
        ),
        Case(
            "tracks_raise",
            "@tracks call that raises (no event)",
            "try:\n    f(CT, ID)\nexcept ValueError:\n    pass",
            {"f": tracked_provision_fails, **args},
        ),
        Case(
            "wrapt_raise",
            "wrapt pass-through that raises",
            "try:\n    f(CT, ID)\nexcept ValueError:\n    pass",
            {"f": wrapt_passthrough(provision_fails), **args},
        ),
    ]
    return cases, clients
