"""`instrument collect`: a Segment-compatible collector that stores before it answers, with plan checks."""

from __future__ import annotations

import base64
import gzip
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from run_instrument import run_instrument
from segment.analytics import Client as SegmentClient

import instrument
from examples.porter.analytics import ClusterProvisioningSuccess, Events
from instrument import Track, analytics_scope
from instrument.plan import Collector, plan_of_module

ROOT = Path(__file__).resolve().parent.parent
PORTER = "examples.porter.analytics"
pytestmark = pytest.mark.timeout(120)
AUTH = "Basic " + base64.b64encode(b"wk-collect:").decode()


class SuccessWithoutInfra(Track, event=Events.CLUSTER_PROVISIONING_SUCCESS, scope="cluster"):
    """An out-of-date copy of the event: it lacks infra_id, which the plan requires."""

    cluster_type: str


@pytest.fixture(scope="module")
def _porter_collector() -> Iterator[Collector]:
    # One server per module: building the plan reads the catalog's source (0.25 s) and a stop waits for the
    # server's 0.5 s poll; each test still starts from an empty store (below).
    with Collector(plan=plan_of_module(PORTER)) as running:
        yield running


@pytest.fixture
def collector(_porter_collector: Collector) -> Collector:
    """The Porter-plan collector, its store emptied through its public reset."""
    _porter_collector.store.reset()
    assert _porter_collector.store.counts() == {"total": 0, "good": 0, "bad": 0}
    return _porter_collector


def _get(collector: Collector, path: str, **params: Any) -> Any:
    answer = requests.get(collector.url + path, params=params, timeout=30)
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


def _post(collector: Collector, path: str, body: bytes, **headers: str) -> requests.Response:
    sent = {"Content-Type": "application/json", "Authorization": AUTH, **headers}
    return requests.post(collector.url + path, data=body, headers=sent, timeout=30)


def _good_track(**properties: Any) -> dict[str, Any]:
    props = {"cluster_type": "eks", "infra_id": 7, "proj_id": 1, "cluster_id": 3, **properties}
    return {"type": "track", "event": "Cluster Provisioning Success", "userId": "42", "properties": props}


def test_the_real_transport_sends_a_good_and_a_bad_event_queryable_right_after_flush(collector: Collector) -> None:
    instrument.configure("wk-collect", host=collector.url, flush_interval=30.0)
    try:
        with analytics_scope(user_id=42, project_id=1, cluster_id=3):
            instrument.track(ClusterProvisioningSuccess(cluster_type="eks", infra_id=7))
            instrument.track(SuccessWithoutInfra(cluster_type="eks"))
        instrument.flush(timeout=30)
        # No sleep and no polling: the collector stored both before it answered the batch.
        assert _get(collector, "/micro/all") == {"total": 2, "good": 1, "bad": 1}
        assert collector.store.counts() == {"total": 2, "good": 1, "bad": 1}  # the README's in-process recipe
        assert [e["event"] for e in collector.store.events(good=False)] == ["Cluster Provisioning Success"]
    finally:
        instrument.shutdown(timeout=10)
    [bad] = _get(collector, "/micro/bad")
    assert bad["violations"] == [
        {
            "type": "Required-Missing",
            "field": "/properties/infra_id",
            "reason": "required property 'infra_id' is missing",
        }
    ]
    assert bad["payload"]["properties"] == {"cluster_type": "eks", "proj_id": 1, "cluster_id": 3}
    [good] = _get(collector, "/micro/good")
    assert (good["event"], good["userId"], good["violations"]) == ("Cluster Provisioning Success", "42", [])
    started = time.monotonic()
    waited = requests.get(collector.url + "/micro/wait", params={"count": 3, "timeout": 0.5}, timeout=30)
    assert time.monotonic() - started >= 0.5
    assert waited.status_code == 408  # more than arrived: a clean timeout, with the counts
    assert waited.json() == {"reached": False, "total": 2, "good": 1, "bad": 1}
    assert requests.post(collector.url + "/micro/reset", timeout=30).json() == {"total": 0, "good": 0, "bad": 0}
    assert _get(collector, "/micro/all") == {"total": 0, "good": 0, "bad": 0}
    assert _get(collector, "/micro/good") == []
    assert _get(collector, "/micro/bad") == []


def test_the_official_segment_client_works_against_it_with_gzip(collector: Collector) -> None:
    client = SegmentClient("wk-official", host=collector.url, sync_mode=True, gzip=True)
    client.track(
        "42", "Cluster Provisioning Success", {"cluster_type": "eks", "infra_id": 7, "proj_id": 1, "cluster_id": 3}
    )
    client.identify("42", {"email": "ada@example.com", "github": "maybe"})
    client.track("42", "Nobody Planned This", {"x": 1})
    client.flush()
    assert _get(collector, "/micro/all") == {"total": 3, "good": 1, "bad": 2}
    identify = _get(collector, "/micro/bad", type="identify")  # "maybe" is a string, but not one of the enum
    assert [v["type"] + " " + v["field"] for v in identify[0]["violations"]] == ["Unknown-Violation /traits/github"]
    unplanned = _get(collector, "/micro/bad", event="Nobody Planned This")
    assert unplanned[0]["violations"][0]["type"] == "Unplanned-Event"
    assert _get(collector, "/micro/good", user="42")[0]["event"] == "Cluster Provisioning Success"
    assert _get(collector, "/micro/good", user="7") == []


def test_single_message_paths_and_violation_names(collector: Collector) -> None:
    extra = _good_track(color="red")
    wrong = _good_track(infra_id="seven")
    for message in (extra, wrong):
        body = {k: v for k, v in message.items() if k != "type"}
        assert _post(collector, "/v1/track", json.dumps(body).encode()).json() == {"success": True}
    identify = {"userId": "42", "traits": {"email": "a@b.c", "github": "true"}}
    assert _post(collector, "/v1/identify", json.dumps(identify).encode()).status_code == 200
    bad = {e["payload"]["properties"].get("color", "wrong"): e["violations"] for e in _get(collector, "/micro/bad")}
    assert bad["red"] == [
        {"type": "Additional-Properties", "field": "/properties/color", "reason": "property 'color' is not planned"}
    ]
    assert bad["wrong"][0]["type"] == "Datatype-Mismatch"
    assert bad["wrong"][0]["field"] == "/properties/infra_id"
    assert "seven" not in bad["wrong"][0]["reason"]
    assert _get(collector, "/micro/all") == {"total": 3, "good": 1, "bad": 2}


def _batch(*messages: dict[str, Any]) -> bytes:
    return json.dumps({"batch": list(messages)}).encode()


REFUSALS = [
    ("malformed JSON", "/v1/batch", b'{"batch": [', {}, 400, "malformed JSON"),
    (
        "wrong content type",
        "/v1/batch",
        _batch(_good_track()),
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "Content-Type must be application/json or text/plain",
    ),
    ("missing write key", "/v1/batch", _batch(_good_track()), {"Authorization": ""}, 401, "missing write key"),
    ("batch not a list", "/v1/batch", b'{"batch": {}}', {}, 400, "batch: expected a list"),
    (
        "message over 32 KB",
        "/v1/batch",
        _batch(_good_track(), _good_track(cluster_type="x" * 33_000)),
        {},
        400,
        "batch[1]: message is",
    ),
    (
        "batch over 500 KB",
        "/v1/batch",
        _batch(*[_good_track(cluster_type="x" * 20_000)] * 26),
        {},
        400,
        "over the 500000-byte limit",
    ),
    ("bad gzip", "/v1/batch", b"not gzip", {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
    ("unknown path", "/v2/everything", _batch(_good_track()), {}, 404, "no such endpoint"),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "headers", "status", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refusals_are_4xx_with_a_reason_and_the_server_keeps_serving(
    collector: Collector, name: str, path: str, body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    answer = _post(collector, path, body, **headers)
    assert answer.status_code == status
    assert answer.json()["success"] is False
    assert reason in answer.json()["message"]
    assert _get(collector, "/micro/all")["total"] == 0  # nothing of a refused request is stored
    assert (
        _post(collector, "/v1/batch", gzip.compress(_batch(_good_track())), **{"Content-Encoding": "gzip"}).status_code
        == 200
    )
    assert _get(collector, "/micro/all") == {"total": 1, "good": 1, "bad": 0}


def test_a_write_key_in_the_body_is_accepted_and_a_configured_key_is_enforced() -> None:
    with Collector(write_key="only-this") as running:
        body = json.dumps({"batch": [_good_track()], "writeKey": "only-this"}).encode()
        assert _post(running, "/v1/batch", body, Authorization="").status_code == 200
        refused = _post(running, "/v1/batch", _batch(_good_track()))
        assert (refused.status_code, refused.json()["message"]) == (401, "unknown write key")
        assert _get(running, "/micro/all") == {"total": 1, "good": 1, "bad": 0}  # no plan: every event is good


def test_events_are_in_the_sqlite_file_before_the_answer(tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    with Collector(db=str(db)) as running:
        for i in range(3):
            assert _post(running, "/v1/batch", _batch(_good_track(infra_id=i))).status_code == 200
            with sqlite3.connect(db) as other:  # another connection, as another process would read it
                assert other.execute("SELECT COUNT(*) FROM events").fetchone() == (i + 1,)


def test_a_long_poll_returns_as_soon_as_the_events_arrive(collector: Collector) -> None:
    def send_later() -> None:
        time.sleep(0.3)
        _post(collector, "/v1/batch", _batch(_good_track(), _good_track()))

    sender = threading.Thread(target=send_later)
    sender.start()
    started = time.monotonic()
    waited = requests.get(collector.url + "/micro/wait", params={"count": 2, "timeout": 60}, timeout=90)
    sender.join()
    assert waited.status_code == 200
    assert waited.json() == {"reached": True, "total": 2, "good": 2, "bad": 0}
    assert time.monotonic() - started < 30  # generous: woken by the arrival, not by the 60 s timeout


def test_the_collect_command_binds_loopback_and_serves_until_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "instrument",
            "collect",
            "--port",
            "0",
            "--plan",
            str(ROOT / "examples/porter/plan.json"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("collecting on http://127.0.0.1:"), banner
        assert "validating against 49 rules" in banner
        url = banner.split()[2].rstrip(",")
        answer = requests.post(
            url + "/v1/batch",
            data=_batch(_good_track()),
            headers={"Content-Type": "application/json", "Authorization": AUTH},
            timeout=30,
        )
        assert answer.status_code == 200
        assert requests.get(url + "/micro/all", timeout=30).json() == {"total": 1, "good": 1, "bad": 0}
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_plan_that_cannot_load_stops_the_command_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text("[]")
    done = run_instrument("collect", "--port", "0", "--plan", str(bad))
    assert done.returncode == 2
    assert f"{bad}: not a plan" in done.stderr


def test_concurrent_senders_lose_nothing(collector: Collector) -> None:
    def send(worker: int) -> None:
        with requests.Session() as session:
            for i in range(20):
                body = _batch(*[_good_track(infra_id=worker * 1000 + i)] * 3)
                headers = {"Content-Type": "application/json", "Authorization": AUTH}
                assert session.post(collector.url + "/v1/batch", data=body, headers=headers, timeout=30).ok

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert _get(collector, "/micro/all") == {"total": 360, "good": 360, "bad": 0}
    assert len(_get(collector, "/micro/good")) == 360


def test_a_plan_with_an_invalid_schema_is_refused_naming_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    schema = {"properties": {"properties": {"type": "object", "properties": {"n": {"type": 5}}}}}
    bad.write_text(
        json.dumps({"rules": [{"key": "Order Placed", "type": "TRACK", "version": 1, "jsonSchema": schema}]})
    )
    done = run_instrument("collect", "--port", "0", "--plan", str(bad))
    assert done.returncode == 2
    assert f"{bad}: rule 'Order Placed': not a valid draft-07 schema at /properties/properties/properties/n/type" in (
        done.stderr
    )


def test_a_busy_port_is_exit_2_naming_the_address() -> None:
    with Collector() as busy:
        port = busy.url.rsplit(":", 1)[1]
        done = run_instrument("collect", "--port", port)
    assert done.returncode == 2
    assert done.stderr.startswith(f"instrument: error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in done.stderr


def _store_mix(collector: Collector) -> None:
    unplanned = {"type": "track", "event": "Nobody Planned This", "userId": "7"}
    identify = {"type": "identify", "userId": "7", "traits": {"email": "a@b.c", "github": "true"}}
    body = _batch(_good_track(), _good_track(infra_id=8), unplanned, identify, _good_track(infra_id="x"))
    assert _post(collector, "/v1/batch", body).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_reset_answers_get_and_post_as_micro_does(collector: Collector, method: str) -> None:
    _store_mix(collector)
    answer = requests.request(method, collector.url + "/micro/reset", timeout=30)
    assert (answer.status_code, answer.json()) == (200, {"total": 0, "good": 0, "bad": 0})
    assert _get(collector, "/micro/all") == {"total": 0, "good": 0, "bad": 0}


def test_micros_post_filters_and_limit_select_events(collector: Collector) -> None:
    _store_mix(collector)

    def query(path: str, **filters: Any) -> list[dict[str, Any]]:
        answer = requests.post(collector.url + path, json=filters, timeout=30)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found

    assert len(query("/micro/good")) == 3
    assert [e["eventType"] for e in query("/micro/good", event_type="identify")] == ["identify"]
    assert len(query("/micro/good", schema="Cluster Provisioning Success")) == 2
    [newest] = query("/micro/good", schema="Cluster Provisioning Success", limit=1)
    assert newest["payload"]["properties"]["infra_id"] == 8  # newest first, as Micro lists them
    assert {e["event"] for e in query("/micro/bad")} == {"Nobody Planned This", "Cluster Provisioning Success"}
    [wrong] = query("/micro/bad", schema="Cluster Provisioning Success", user="42")
    assert wrong["errors"] == ["Datatype-Mismatch at /properties/infra_id: expected type 'integer', got string"]
    assert len(_get(collector, "/micro/good", limit=2)) == 2
    refused = requests.post(collector.url + "/micro/bad", json={"vendor": "com.acme"}, timeout=30)
    assert (refused.status_code, refused.json()["message"]) == (
        400,
        "unsupported filter 'vendor' (event_type, schema, event, type, user, limit)",
    )


def test_events_after_an_id_come_oldest_first_so_a_reader_catches_up_without_gaps(collector: Collector) -> None:
    for batch in range(5):
        assert _post(collector, "/v1/batch", _batch(*[_good_track(infra_id=batch * 10 + i) for i in range(10)])).ok
    seen: list[int] = []
    after = 0
    while True:
        page = _get(collector, "/micro/events", after=after, limit=7)
        if not page:
            break
        seen += [e["payload"]["properties"]["infra_id"] for e in page]
        after = page[-1]["id"]
    assert seen == list(range(50))


def test_the_collector_validates_each_of_the_six_calls_instrument_sends_against_its_rule() -> None:
    from calls_app import Home, Membership, Pricing, send_all

    with Collector(plan=plan_of_module("calls_app")) as running:
        instrument.configure("wk-collect", host=running.url, flush_interval=30.0)
        try:
            send_all()  # one of each call, all good
            with analytics_scope(user_id=42, project_id=7):
                instrument.group(Membership(role="admin"))
                instrument.page(Pricing(plan="pro"))
                instrument.screen(Home(tab="feed"))
            assert instrument.flush(timeout=30)
        finally:
            instrument.shutdown(timeout=10)
        assert _get(running, "/micro/all") == {"total": 9, "good": 9, "bad": 0}
        kinds = sorted(e["type"] for e in running.store.events(good=True))
        assert kinds == ["alias", "group", "group", "identify", "page", "page", "screen", "screen", "track"]
        # The same calls with what their rules refuse, sent as raw messages (instrument would refuse them).
        bad = [
            {"type": "group", "userId": "42", "groupId": "7", "traits": {"role": "owner"}},
            {"type": "page", "userId": "42", "name": "Pricing", "properties": {"plan": 3}},
            {"type": "screen", "userId": "42", "name": "Home", "properties": {}},
            {"type": "alias", "userId": "42"},
        ]
        assert _post(running, "/v1/batch", json.dumps({"batch": bad}).encode()).status_code == 200
        found = {
            e["type"]: [v["type"] + " " + v["field"] for v in e["violations"]] for e in _get(running, "/micro/bad")
        }
    assert found == {
        "group": ["Unknown-Violation /traits/role"],
        "page": ["Datatype-Mismatch /properties/plan"],
        "screen": ["Required-Missing /properties/tab"],
        "alias": ["Required-Missing /previousId"],
    }
