"""An app with three destinations (by catalog, by scope with a rename, by event names): the plan export
shows the routing delivery applies."""

from __future__ import annotations

import instrument
from instrument.destinations import Amplitude, Mixpanel, PostHog

LOOPBACK = "http://127.0.0.1:9"


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


DESTINATIONS = [
    Amplitude("amp-key", host=LOOPBACK, events=[Shop], consent="analytics"),
    PostHog("ph-key", host=LOOPBACK, scopes=["project"], renames={"Project Created": "project_created"}),
    Mixpanel("mp-key", host=LOOPBACK, events=["Signed Up", "Report Saved"], identifies=False, personal="omit"),
]
