"""Settings: every configure() argument validated once (clear ConfigurationError, no secret shown),
frozen, and handed down to the Client, the dispatcher and the transport."""

from __future__ import annotations

import dataclasses
import http.client
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import instrument
from instrument import Client, ConfigurationError, EventName, MemoryTransport, SegmentTransport, Settings, define_scope
from instrument.transports._http import Target

SECRET = "hunter2-s3cret"

BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"flush_interval": math.nan}, "flush_interval must be a finite number"),
    ({"flush_interval": math.inf}, "flush_interval must be a finite number"),
    ({"timeout": -math.inf}, "timeout must be a finite number"),
    ({"exit_timeout": math.nan}, "exit_timeout must be a finite number"),
    ({"retry_window": math.inf}, "retry_window must be a finite number"),
    ({"flush_interval": 0}, "flush_interval must be > 0"),
    ({"timeout": 1e12}, "timeout must be at most 86400 seconds"),
    ({"exit_timeout": -1}, "exit_timeout must be >= 0"),
    ({"flush_interval": "0.5"}, "flush_interval must be a number of seconds"),
    ({"flush_interval": True}, "flush_interval must be a number of seconds"),
    ({"max_queue_size": True}, "max_queue_size must be an int, got bool"),
    ({"max_queue_size": 0.5}, "max_queue_size must be an int, got float"),
    ({"max_queue_size": 0}, "max_queue_size must be >= 1"),
    ({"batch_size": 10.0}, "batch_size must be an int"),
    ({"max_retries": -1}, "max_retries must be >= 0"),
    ({"max_retries": False}, "max_retries must be an int"),
    ({"max_queue_bytes": 0}, "max_queue_bytes must be >= 1"),
    ({"max_queue_bytes": True}, "max_queue_bytes must be an int"),
    ({"queue_policy": "drop_random"}, "queue_policy must be 'drop_newest' or 'drop_oldest'"),
    ({"strict": "yes"}, "strict must be True or False"),
    ({"gzip": 1}, "gzip must be True or False"),
    ({"sync": None}, "sync must be True or False"),
    ({"on_error": "log"}, "on_error must be callable"),
    ({"redact": 5}, "redact must be callable"),
    ({"transport": 5}, "transport must be a Transport"),
    ({"transport": MemoryTransport}, "transport must be a Transport"),
    ({"write_key": ""}, "write_key must be a non-empty str"),
    ({"write_key": 123}, "write_key must be a non-empty str, got int"),
    ({"host": 123}, "host must be an http\\(s\\) URL as a str, got int"),
    ({"host": "ftp://example.com"}, "host must be an http:// or https:// URL"),
    ({"host": "example.com"}, "host must be an http:// or https:// URL"),
    ({"host": "http://"}, "host must name a host"),
    ({"host": "http://example.com:99999"}, "host has an invalid port"),
    ({"host": "http://example.com:0"}, "host has an invalid port"),
    ({"host": "http://example.com:8o"}, "host has an invalid port"),
    ({"host": "http://exa mple.com"}, "host must not contain whitespace or control characters"),
    ({"host": "http://exa\x00mple.com"}, "host must not contain whitespace or control characters"),
    ({"host": "http://example.com\n"}, "host must not contain whitespace or control characters"),
    ({"host": " http://example.com"}, "host must not contain whitespace or control characters"),
    ({"host": "http://example.com/v1?key=1"}, "host must not have a query or fragment"),
    ({"host": "http://example.com/caf\u00e9"}, "host path must be ASCII"),
    ({"host": "http://[::zz]/"}, "host is not a valid URL"),
    ({"host": "http://exa<mple.com"}, "host has an invalid host name"),
    ({"wire_keys": "proj_id"}, "wire_keys must be a mapping"),
    ({"wire_keys": {"project_id": ""}}, "wire key for 'project_id' must be a non-empty str"),
    ({"wire_keys": {"project_id": "cluster_id"}}, "would both be sent as 'cluster_id'"),
    ({"wire_keys": {"project_id": "id", "cluster_id": "id"}}, "would both be sent as 'id'"),
    ({"wire_keys": {"project_id": "userId"}}, "would both be sent as 'userId'"),
]


@pytest.mark.parametrize(("options", "message"), BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_configure_refuses_a_bad_argument_naming_it(options: dict[str, Any], message: str) -> None:
    if "transport" not in options:
        options.setdefault("write_key", "wk")  # so that only the argument under test is wrong
    before = instrument.get_client()
    with pytest.raises(ConfigurationError, match=message):
        instrument.configure(**options)
    assert instrument.get_client() is before  # nothing was replaced


@pytest.mark.parametrize("host", [f"http://alice:{SECRET}@example.com", f"https://{SECRET}@example.com/v1"])
def test_credentials_in_host_are_refused_without_showing_them(host: str) -> None:
    with pytest.raises(ConfigurationError, match="must not contain credentials") as info:
        instrument.configure("wk", host=host)
    assert SECRET not in str(info.value)
    assert "alice" not in str(info.value)


def test_a_secret_like_value_of_a_wrong_type_is_named_by_type_only() -> None:
    with pytest.raises(ConfigurationError) as info:
        instrument.configure("wk", on_error=SECRET)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
    assert "got str" in str(info.value)


@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(10**20), max_value=10**20))
def test_any_number_is_accepted_as_an_interval_exactly_when_it_is_usable(value: float) -> None:
    usable = math.isfinite(value) and 0 < value <= 86_400
    if usable:
        assert Settings(flush_interval=value).flush_interval == value
    else:
        with pytest.raises(ConfigurationError, match="flush_interval"):
            Settings(flush_interval=value)


@pytest.mark.parametrize(
    "host",
    ["http://127.0.0.1:8080", "https://api.segment.io", "http://[::1]:9/v1", "HTTPS://Bücher.example/proxy/"],
)
def test_http_and_https_hosts_are_accepted(host: str) -> None:
    assert Settings(host=host).host == host


def test_settings_are_frozen_and_replace_validates() -> None:
    settings = Settings(max_queue_size=5, wire_keys={"project_id": "proj_id"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.max_queue_size = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.wire_keys["project_id"] = "p"  # type: ignore[index]
    assert settings.replace(max_queue_size=6).max_queue_size == 6
    with pytest.raises(ConfigurationError, match="max_queue_size"):
        settings.replace(max_queue_size=-1)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        settings.replace(max_queue=6)


def test_the_callers_wire_keys_dict_changing_later_does_not_change_the_settings() -> None:
    keys = {"project_id": "proj_id"}
    settings = Settings(wire_keys=keys)
    keys["project_id"] = "other"
    assert settings.wire_keys == {"project_id": "proj_id"}


def test_configure_builds_one_settings_object_that_the_dispatcher_and_transport_share() -> None:
    client = instrument.configure(
        "wk", host="http://127.0.0.1:9", max_queue_size=7, max_queue_bytes=1_000_000, batch_size=3, timeout=2.5
    )
    try:
        settings = client.settings
        assert (settings.max_queue_size, settings.max_queue_bytes, settings.batch_size) == (7, 1_000_000, 3)
        assert client.dispatcher.settings is settings
        transport = client.dispatcher.transport
        assert isinstance(transport, SegmentTransport)
        assert transport.settings is settings
        assert transport._timeout == 2.5  # the sender's whole-request deadline
        assert transport._max_bytes == 1_000_000
        assert "wk" not in repr(settings)
    finally:
        client.shutdown(0)


def test_client_keywords_are_settings_fields() -> None:
    client = Client(MemoryTransport(), Settings(batch_size=5), sync=True, strict=True)
    assert (client.settings.batch_size, client.settings.sync, client.strict) == (5, True, True)
    with pytest.raises(ConfigurationError, match="unknown setting"):
        Client(MemoryTransport(), strictness=True)
    with pytest.raises(ConfigurationError, match="transport must be a Transport"):
        Client("nowhere")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="settings must be a Settings, got dict"):
        Client(MemoryTransport(), {"strict": True})  # type: ignore[arg-type]


@given(
    user=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20),
    password=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!$*", min_size=8, max_size=40),
    scheme=st.sampled_from(["http", "https", "ftp", ""]),
)
def test_no_credential_in_a_host_is_ever_shown(user: str, password: str, scheme: str) -> None:
    host = f"{scheme}://{user}:{password}@collector.internal:8443/v1" if scheme else f"{user}:{password}@collector"
    with pytest.raises(ConfigurationError) as info:
        Settings(host=host)
    assert password not in str(info.value)


def assert_the_sender_can_build_a_request_for(host: str) -> None:
    """What the sender does with a host, up to the bytes of the request (nothing is sent)."""
    target = Target.parse(host, "/v1/batch")
    connection = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    conn = connection(target.host, target.port, timeout=1)
    conn.putrequest("POST", target.path)  # the request line and Host header: refuses what http.client cannot send
    conn.putheader("Content-Type", "application/json")
    conn.close()


URL_PIECES = st.text(max_size=12) | st.sampled_from(["", "127.0.0.1", "[::1]", "example.com", "/v1", "::", "%41"])


@given(
    st.text()
    | st.builds(
        "{}://{}{}{}".format,
        st.sampled_from(["http", "https", "HTTP", "ftp", ""]) | st.text(max_size=5),
        URL_PIECES,
        st.sampled_from(["", ":", ":80", ":0", ":65535", ":65536", ":-1", ": 80"])
        | st.integers(-5, 70_000).map(":{}".format),
        URL_PIECES,
    )
)
@settings(max_examples=300)
def test_any_host_is_refused_or_usable_by_the_sender(host: str) -> None:
    try:
        Settings(host=host)
    except ConfigurationError as error:
        refused = str(error)
    else:
        refused = ""
    if refused:
        assert refused.startswith("configure: host ")  # names the argument
    else:
        assert_the_sender_can_build_a_request_for(host)


@given(
    secret=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=12, max_size=30), where=st.integers(0, 5)
)
def test_a_refused_host_never_shows_what_it_holds(secret: str, where: int) -> None:
    host = [
        f"http://user:{secret}@example.com",
        f"{secret}:pass",  # parsed as scheme {secret}
        f"http://example.com:{secret}",
        f"http://example.com/{secret} ",
        f"http://example.com/?{secret}",
        f"http://{secret}<>/",
    ][where]
    with pytest.raises(ConfigurationError) as info:
        Settings(host=host)
    assert secret not in str(info.value)
    assert secret.lower() not in str(info.value)


def test_configure_wire_keys_that_disagree_with_a_catalogs_are_a_configuration_error() -> None:
    # A field of its own, so no other test's catalog renames it (the renames are process-wide).
    define_scope("scan", parent="user", fields=["scan_id"])

    class ScanEvents(EventName, wire_keys={"scan_id": "sid"}):
        SCAN_FINISHED = "Scan Finished"

    with pytest.raises(ConfigurationError) as info:
        instrument.configure(transport=MemoryTransport(), wire_keys={"scan_id": "scan"})
    assert "configure: wire_keys sends 'scan_id' as 'scan', but catalog " in str(info.value)
    assert "ScanEvents sends it as 'sid'" in str(info.value)
    client = instrument.configure(transport=MemoryTransport(), wire_keys={"scan_id": "sid"})  # agrees
    assert client.settings.wire_keys == {"scan_id": "sid"}


def test_a_catalog_defined_after_configure_must_agree_with_its_wire_keys() -> None:
    define_scope("probe", parent="user", fields=["probe_id"])
    instrument.configure(transport=MemoryTransport(), wire_keys={"probe_id": "pid"})
    with pytest.raises(ConfigurationError, match=r"but configure\(wire_keys=\.\.\.\) sends it as 'pid'"):

        class ProbeEvents(EventName, wire_keys={"probe_id": "probe"}):
            PROBE_SENT = "Probe Sent"

    class AgreeingProbeEvents(EventName, wire_keys={"probe_id": "pid"}):
        PROBE_RECEIVED = "Probe Received"

    assert AgreeingProbeEvents.__wire_keys__ == {"probe_id": "pid"}
