"""The write key stays secret (logs at DEBUG, reprs, errors, stats) and personal data can be redacted."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from log_capture import LogCapture

import instrument
from instrument import AnalyticsError, Client, DeliveryError, EventName, SegmentTransport, Track, analytics_scope
from instrument.testing import SegmentEndpoint

pytestmark = pytest.mark.timeout(60)

WRITE_KEY = "wk_SECRET_7f3a9c41e2b8"
ENCODED_KEY = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


class Events(EventName):
    ACCOUNT_UPDATED = "Account Updated"


class AccountUpdated(Track, event=Events.ACCOUNT_UPDATED):
    plan: str
    email: str = ""
    name: str = ""
    company: str = ""


@pytest.fixture
def write_key() -> str:
    return WRITE_KEY


def assert_no_key(text: str) -> None:
    assert WRITE_KEY not in text
    assert ENCODED_KEY not in text


def test_write_key_never_appears_in_logs_reprs_errors_or_stats(
    endpoint: SegmentEndpoint, configure: Callable[..., Client], all_logs: LogCapture
) -> None:
    errors: list[AnalyticsError] = []
    client = configure(max_retries=1, on_error=errors.append)
    endpoint.fail_next(1, 503)  # a retry (logged at debug)
    with analytics_scope(user_id="u1"):
        instrument.track(AccountUpdated(plan="pro"))
        assert instrument.flush(5.0)
        endpoint.fail_next(2, 500)  # given up on: an error log and a DeliveryError
        instrument.track(AccountUpdated(plan="team"))
        assert not instrument.flush(5.0)  # finished, not delivered
        endpoint.fail_next(1, 400)
        instrument.track(AccountUpdated(plan="free"))
        assert not instrument.flush(5.0)
    instrument.shutdown(2.0)

    debug = [r for r in all_logs.records if r.name == "instrument" and r.levelno == logging.DEBUG]
    assert any("making request" in r.getMessage() for r in debug)  # requests were logged at debug
    assert endpoint.message_count == 1
    assert len([e for e in errors if isinstance(e, DeliveryError)]) == 2
    for text in all_logs.texts:
        assert_no_key(text)
    for error in errors:
        assert_no_key(str(error))
        assert_no_key(repr(error))
        assert_no_key(repr(vars(error)))
    assert_no_key(repr(client))
    assert_no_key(repr(client.dispatcher.transport))
    assert_no_key(repr(instrument.stats()))


def test_segment_transport_repr_hides_the_key() -> None:
    transport = SegmentTransport(WRITE_KEY, host="http://127.0.0.1:9")

    assert repr(transport) == "SegmentTransport(host='http://127.0.0.1:9', write_key='***')"
    assert WRITE_KEY not in str(vars(transport).get("_consumer_args"))


def test_write_key_is_sent_as_basic_auth_to_the_configured_host_only(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    with SegmentEndpoint() as elsewhere:
        configure()
        with analytics_scope(user_id="u1"):
            instrument.track(AccountUpdated(plan="pro"))
        assert instrument.flush(5.0)

        assert elsewhere.request_count == 0
    [batch] = endpoint.batches
    assert batch.write_key == WRITE_KEY
    assert batch.headers["Authorization"] == f"Basic {ENCODED_KEY}"
    [message] = batch.messages
    assert_no_key(repr(message))  # never inside a message


def test_redact_hook_keeps_personal_data_out_of_track_properties(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    personal = {"email", "name", "company"}
    calls: list[str] = []

    def redact(event: str, properties: dict[str, Any]) -> Mapping[str, Any]:
        calls.append(event)
        return {key: value for key, value in properties.items() if key not in personal}

    configure(redact=redact)
    with analytics_scope(user_id="u1"):
        instrument.track(AccountUpdated(plan="pro", email="ada@example.com", name="Ada", company="Analytical"))
    assert instrument.flush(5.0)

    [message] = endpoint.messages
    assert message["properties"] == {"plan": "pro"}
    assert calls == ["Account Updated"]
    for value in ("ada@example.com", "Ada", "Analytical"):
        assert value not in repr(endpoint.batches[0].body)


def test_failing_redact_hook_drops_the_event_rather_than_sending_it_unredacted(
    endpoint: SegmentEndpoint, configure: Callable[..., Client]
) -> None:
    errors: list[AnalyticsError] = []

    def redact(event: str, properties: dict[str, Any]) -> Mapping[str, Any]:
        raise ValueError("redaction service down")

    configure(redact=redact, on_error=errors.append)
    with analytics_scope(user_id="u1"):
        instrument.track(AccountUpdated(plan="pro", email="ada@example.com"))
    assert instrument.flush(5.0)

    assert endpoint.message_count == 0
    [error] = errors
    # The hook's exception is named by type; its text (which may quote a value) is only the __cause__.
    assert "redact hook raised ValueError" in str(error)
    assert "redaction service down" in str(error.__cause__)
    assert "ada@example.com" not in str(error)
    assert instrument.stats().dropped["invalid"] == 1


# -- the spool cannot be turned against its host ---------------------------------------------------


def test_a_symlink_planted_in_the_spool_never_reaches_its_target_through_configure(
    tmp_path: Path, endpoint: SegmentEndpoint
) -> None:
    spool_dir, target = tmp_path / "spool", tmp_path / "authorized_keys"
    spool_dir.mkdir(mode=0o700)
    target.write_bytes(b"ssh-ed25519 AAAA... admin@host\n")  # not a segment: recovery used to truncate it
    (spool_dir / "1-0-planted.seg").symlink_to(target)
    reported: list[AnalyticsError] = []
    instrument.configure(WRITE_KEY, host=endpoint.url, spool=spool_dir, flush_interval=0.05, on_error=reported.append)
    with analytics_scope(user_id="u-1"):
        assert instrument.track(AccountUpdated(plan="pro")).ok
    assert instrument.flush(10)
    assert target.read_bytes() == b"ssh-ed25519 AAAA... admin@host\n"
    assert [type(error).__name__ for error in reported] == ["SpoolError"]
    assert "symbolic link" in str(reported[0])
    assert len(endpoint.message_ids) == 1


def test_a_spool_directory_others_can_write_is_refused_by_configure(tmp_path: Path) -> None:
    spool_dir = tmp_path / "shared"
    spool_dir.mkdir()
    spool_dir.chmod(0o777)
    with pytest.raises(instrument.ConfigurationError, match="writable by other users") as info:
        instrument.configure(WRITE_KEY, host="http://127.0.0.1:9", spool=spool_dir)
    assert str(spool_dir) in str(info.value)
