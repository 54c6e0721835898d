"""An app with three destinations (by catalog, by scope with a rename, by event names): the plan export
shows the routing delivery applies."""

from __future__ import annotations

from collections.abc import Mapping

import instrument
from instrument.destinations import Amplitude, Destination, Mixpanel, PostHog


class Shop(instrument.EventName):
    ORDER_PLACED = "Order Placed"
    CART_VIEWED = "Cart Viewed"
    CHECKOUT_STARTED = "Checkout Started"
    REFUND_ISSUED = "Refund Issued"  # neither a class nor a @tracks use: routed by its name alone


class OrderPlaced(instrument.Track, event=Shop.ORDER_PLACED):
    """An order was placed."""

    total: int


class CartViewed(instrument.Track, event=Shop.CART_VIEWED):
    items: int


class ProjectCreated(instrument.ProjectTrack, event="Project Created"):
    name: str


class ReportSaved(instrument.ProjectTrack, event="Report Saved"):
    pages: int


class SignedUp(instrument.Track, event="Signed Up"):
    plan: str


class Person(instrument.Identify):
    plan: str


@instrument.tracks(Shop.CHECKOUT_STARTED)
def start_checkout() -> None:
    """Sends Checkout Started through its @tracks use (no class declares it)."""


def make_destinations(hosts: Mapping[str, str]) -> list[Destination]:
    """The app's destinations, their routing declared here once; ``hosts`` by name (tests: loopback)."""
    return [
        Amplitude("amp-key", host=hosts["amplitude"], events=[Shop], consent="analytics"),
        PostHog("ph-key", host=hosts["posthog"], scopes=["project"], renames={"Project Created": "project_created"}),
        Mixpanel(
            "mp-key", host=hosts["mixpanel"], events=["Signed Up", "Report Saved"], identifies=False, personal="omit"
        ),
    ]


DESTINATIONS = make_destinations(dict.fromkeys(("amplitude", "posthog", "mixpanel"), "http://127.0.0.1:9"))
