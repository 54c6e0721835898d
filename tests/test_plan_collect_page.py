"""The collector's page at `/`, in a real headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from browser import Page, chromium_page

from instrument.plan import Collector, plan_of_module

pytestmark = pytest.mark.timeout(180)
AUTH = "Basic " + base64.b64encode(b"wk-page:").decode()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    with chromium_page(tmp_path) as opened:
        yield opened


def _send(url: str, *messages: dict[str, Any]) -> None:
    answer = requests.post(
        url + "/v1/batch",
        data=json.dumps({"batch": list(messages)}),
        headers={"Content-Type": "application/json", "Authorization": AUTH},
        timeout=30,
    )
    assert answer.status_code == 200


def _track(user: str, **properties: Any) -> dict[str, Any]:
    props = {"cluster_type": "eks", "infra_id": 7, "proj_id": 1, "cluster_id": 3, **properties}
    return {"type": "track", "event": "Cluster Provisioning Success", "userId": user, "properties": props}


ROWS = "[...document.querySelectorAll('#events tr')]"


def test_the_page_shows_events_live_with_violations_payloads_filters_and_the_plan(page: Page) -> None:
    with Collector(plan=plan_of_module("examples.porter.analytics")) as collector:
        page.call("Page.navigate", url=collector.url + "/")
        page.wait_for("document.readyState === 'complete' && document.getElementById('total') !== null")
        page.wait_for("document.getElementById('no-events').hidden === false")

        _send(collector.url, _track("42"))
        shown_after = page.wait_for(f"{ROWS}.some(r => r.textContent.includes('Cluster Provisioning Success'))")
        assert shown_after < 1.0, f"the event appeared {shown_after:.2f} s after the collector stored it"

        bad = _track("7")
        del bad["properties"]["infra_id"]
        _send(collector.url, bad, {"type": "identify", "userId": "7", "traits": {"email": "a@b.c", "github": "true"}})
        page.wait_for(f"{ROWS}.length === 3")
        # Newest first: the identify, then the bad track, then the first event.
        assert page.js(f"{ROWS}.map(r => r.children[2].textContent + ':' + r.children[5].textContent)") == [
            "identify:good",
            "track:badRequired-Missing /properties/infra_id: required property 'infra_id' is missing",
            "track:good",
        ]
        assert page.js(f"{ROWS}[1].className") == "bad"
        assert (
            page.js("getComputedStyle(document.querySelector('#events tr.bad')).backgroundColor")
            == "rgb(255, 240, 240)"
        )
        assert page.js(
            "[document.getElementById('total').textContent, document.getElementById('bad').textContent]"
        ) == ["3", "1"]

        page.js(f"{ROWS}[1].click()")
        payload = json.loads(page.js("document.getElementById('payload').textContent"))
        assert payload["properties"] == {"cluster_type": "eks", "proj_id": 1, "cluster_id": 3}
        assert payload["userId"] == "7"

        page.js("const u = document.getElementById('filter-user'); u.value = '42'; u.dispatchEvent(new Event('input'))")
        assert page.js(f"{ROWS}.map(r => r.children[4].textContent)") == ["42"]
        page.js(
            "const u2 = document.getElementById('filter-user'); u2.value = ''; u2.dispatchEvent(new Event('input'))"
        )
        page.js("const s = document.getElementById('filter-event'); s.value = '(identify)';")
        page.js("document.getElementById('filter-event').dispatchEvent(new Event('change'))")
        assert page.js(f"{ROWS}.map(r => r.children[2].textContent)") == ["identify"]

        page.js("document.getElementById('tab-plan').click()")
        page.wait_for("document.querySelectorAll('#catalog section').length === 49")  # 47 tracks, identify, group
        catalog = page.js("[...document.querySelectorAll('#catalog h3')].map(h => h.textContent)")
        assert "Cluster Provisioning Success" in catalog
        assert "identify UserTraits" in catalog
        success = page.js(
            "[...document.querySelectorAll('#catalog section')].find(s => s.querySelector('h3').textContent === "
            "'Cluster Provisioning Success').querySelector('tbody').innerText"
        )
        assert "proj_id\tinteger | string\tyes" in success
        assert page.js("document.getElementById('events-view').hidden") is True

        requests.post(collector.url + "/micro/reset", timeout=30)
        page.js("document.getElementById('tab-events').click()")
        page.wait_for(f"{ROWS}.length === 0 && document.getElementById('total').textContent === '0'")


def _open(page: Page, collector: Collector) -> None:
    page.call("Page.navigate", url=collector.url + "/")
    page.wait_for("document.readyState === 'complete' && document.getElementById('total') !== null")
    page.wait_for("document.getElementById('no-events').hidden === false")


def _set(page: Page, element: str, value: str) -> None:
    kind = "change" if element.startswith("filter-") and element not in ("filter-user",) else "input"
    page.js(
        f"(() => {{ const x = document.getElementById({json.dumps(element)}); x.value = {json.dumps(value)};"
        f" x.dispatchEvent(new Event({json.dumps(kind)})); return true; }})()"
    )


def test_the_page_shows_every_one_of_5000_events_sent_at_2000_a_second(page: Page) -> None:
    with Collector(plan=plan_of_module("examples.porter.analytics")) as collector:
        _open(page, collector)
        batches = [
            [_track(f"u{b * 20 + i}", **({"infra_id": "x"} if (b * 20 + i) % 10 == 0 else {})) for i in range(20)]
            for b in range(250)
        ]
        started = time.monotonic()
        with requests.Session() as session:
            for index, batch in enumerate(batches):  # 20 events every 10 ms: 2,000 events a second
                delay = started + index * 0.010 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                answer = session.post(
                    collector.url + "/v1/batch",
                    data=json.dumps({"batch": batch}),
                    headers={"Content-Type": "application/json", "Authorization": AUTH},
                    timeout=30,
                )
                assert answer.status_code == 200
        rate = 5000 / (time.monotonic() - started)
        assert rate > 1000, f"the sender managed only {rate:.0f} events/s"  # the load the test claims
        page.wait_for("document.getElementById('total').textContent === '5000'", timeout=60)
        # Bounded, and says what it leaves out: 500 rows, 4,500 more on demand (never a silent gap).
        page.wait_for("document.getElementById('more-count').textContent === '4500 more events not shown'")
        assert page.js(f"{ROWS}.length") == 500
        while not page.js("document.getElementById('show-more').hidden"):
            page.js("document.getElementById('show-more').click()")
        shown = page.js(f"{ROWS}.map(r => r.children[4].textContent)")
        assert len(shown) == 5000
        assert set(shown) == {f"u{n}" for n in range(5000)}
        ids = page.js(f"{ROWS}.map(r => Number(r.dataset.id))")
        assert ids == sorted(ids, reverse=True)  # newest first, each once
        assert page.js(f"{ROWS}.filter(r => r.className.startsWith('bad')).length") == 500
        assert page.js("document.getElementById('more').hidden") is True


def test_the_page_adds_rows_without_rebuilding_and_filters_searches_and_pauses(page: Page) -> None:
    with Collector(plan=plan_of_module("examples.porter.analytics")) as collector:
        _open(page, collector)
        _send(collector.url, _track("1"), _track("2"), _track("3", cluster_type="gke-secret-marker"))
        page.wait_for(f"{ROWS}.length === 3")
        page.js(f"{ROWS}.forEach(r => {{ r.probe = true; }}); true")
        bad = _track("4")
        del bad["properties"]["infra_id"]
        _send(collector.url, bad, _track("5", infra_id="seven"))
        page.wait_for(f"{ROWS}.length === 5")
        assert page.js(f"{ROWS}.map(r => r.probe === true)") == [False, False, True, True, True]  # kept, not redrawn
        assert all(
            re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", t) for t in page.js(f"{ROWS}.map(r => r.children[1].textContent)")
        )

        _set(page, "filter-outcome", "bad")
        assert page.js(f"{ROWS}.map(r => r.children[4].textContent)") == ["5", "4"]
        _set(page, "filter-outcome", "")
        _set(page, "search", "GKE-SECRET")  # case-insensitive, through the payload
        assert page.js(f"{ROWS}.map(r => r.children[4].textContent)") == ["3"]
        _set(page, "search", "")
        _send(collector.url, {"type": "identify", "userId": "6", "traits": {"email": "a@b.c", "github": "true"}})
        page.wait_for(f"{ROWS}.length === 6")
        _set(page, "filter-type", "identify")
        assert page.js(f"{ROWS}.map(r => r.children[4].textContent)") == ["6"]
        _set(page, "filter-type", "")

        page.js("document.getElementById('pause').click()")
        _send(collector.url, *[_track(f"p{i}") for i in range(4)])
        page.wait_for("document.getElementById('status').textContent === 'Paused: 4 new events not shown yet.'")
        assert page.js(f"{ROWS}.length") == 6
        page.js("document.getElementById('pause').click()")
        assert page.js(f"{ROWS}.length") == 10
        assert page.js("document.getElementById('status').textContent") == ""

        # The payload pane marks the violating field (a missing one: its object) and lists the reasons.
        page.js(f"{ROWS}.find(r => r.children[4].textContent === '5').click()")
        assert page.js("[...document.querySelectorAll('#payload .mark')].map(m => m.dataset.pointer)") == [
            "/properties/infra_id"
        ]
        assert page.js("document.querySelector('#payload .mark').textContent") == '    "infra_id": "seven"'
        assert json.loads(page.js("document.getElementById('payload').textContent"))["userId"] == "5"
        page.js(f"{ROWS}.find(r => r.children[4].textContent === '4').click()")
        assert page.js("[...document.querySelectorAll('#payload .mark')].map(m => m.dataset.pointer)") == [
            "/properties"
        ]
        assert page.js("document.getElementById('violations').innerText") == (
            "Required-Missing at /properties/infra_id: required property 'infra_id' is missing"
        )
        # Sticky: with the table scrolled far down, the pane is still in view.
        _send(collector.url, *[_track(f"s{i}") for i in range(80)])
        page.wait_for(f"{ROWS}.length === 90")
        page.js("window.scrollTo(0, document.body.scrollHeight); true")
        top = page.js("document.getElementById('detail').getBoundingClientRect().top")
        assert 0 <= top < page.js("window.innerHeight") / 2
