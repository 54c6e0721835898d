"""An app that declares all six Segment calls: the plan tests export and enforce it."""

from __future__ import annotations

from typing import Literal

import instrument


class Events(instrument.EventName):
    SEAT_ADDED = "Seat Added"


class SeatAdded(instrument.ProjectTrack, event=Events.SEAT_ADDED):
    """A seat was added to a project."""

    seats: int


class Person(instrument.Identify):
    """Who the user is."""

    email: str


class Membership(instrument.ProjectGroup):
    """The user belongs to the project."""

    role: Literal["admin", "viewer"]


class Pricing(instrument.Page, name="Pricing", category="Docs"):
    """The pricing page."""

    plan: str
    referrer: str | None = None


class Home(instrument.Screen, name="Home"):
    """The app's home screen."""

    tab: str


class Signup(instrument.Alias):
    """An anonymous visitor signed up."""


def send_all() -> None:
    """One of each call, as the app sends them."""
    with instrument.analytics_scope(user_id=42, project_id=7, anonymous_id="anon-1"):
        instrument.track(SeatAdded(seats=3))
        instrument.identify(Person(email="a@b.c"))
        instrument.group(Membership(role="admin"))
        instrument.page(Pricing(plan="pro"))
        instrument.screen(Home(tab="feed"))
        instrument.alias(Signup(previous_id="anon-1"))


def sent_messages() -> list[dict[str, object]]:
    """The wire messages ``send_all`` sends, captured."""
    from instrument.testing import capture_events

    with capture_events() as events:
        send_all()
    return [dict(m) for m in events.messages]
