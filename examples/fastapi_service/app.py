"""The service: ids bound once (middleware + a routed dependency), events from every kind of hand-off."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI
from starlette.requests import HTTPConnection

import instrument
from instrument import EventName, PropagatingExecutor, Track, tracks
from instrument.integrations.fastapi import AnalyticsMiddleware, path_param, scope_dependency


class Events(EventName):
    PROJECT_VIEWED = "Project Viewed"
    REPORT_PART_RENDERED = "Report Part Rendered"
    REPORT_EXPORT_STARTED = "Report Export Started"
    REPORT_EMAIL_SENT = "Report Email Sent"


class ProjectViewed(Track, event=Events.PROJECT_VIEWED, scope="project"):
    pass


class ReportPartRendered(Track, event=Events.REPORT_PART_RENDERED, scope="project"):
    part: int


class ReportExportStarted(Track, event=Events.REPORT_EXPORT_STARTED, scope="project"):
    parts: int


class ReportEmailSent(Track, event=Events.REPORT_EMAIL_SENT, scope="project"):
    pass


# A stand-in for the service's own authentication: tokens it issued, mapped to their users. The user id
# is never read from a header the client fills in (anyone could send "X-User-Id: 1"); it comes from a
# credential the server checks. Behind Starlette's AuthenticationMiddleware: ``connection.user``.
SESSIONS = {"demo-token-42": 42}


def user_id_of(connection: HTTPConnection) -> int | None:
    """The user the request's bearer token was issued to; None (anonymous) for no or an unknown token."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return SESSIONS.get(token) if scheme.lower() == "bearer" else None


# Work handed to this pool runs under the scope of the request that submitted it.
pool = PropagatingExecutor(ThreadPoolExecutor(max_workers=4))

app = FastAPI()
app.add_middleware(AnalyticsMiddleware, resolvers={"user_id": user_id_of})
projects = APIRouter(
    prefix="/projects/{project_id}",
    dependencies=[Depends(scope_dependency(project_id=path_param("project_id", int)))],
)


@projects.get("")
async def view_project(project_id: int) -> dict[str, Any]:
    """An ``async def`` endpoint: the scope is simply there."""
    instrument.track(ProjectViewed())
    return {"project": project_id}


@tracks(ReportPartRendered)
def render_part(part: int) -> str:
    return f"part {part}"


@tracks(ReportEmailSent)
def email_report() -> None:
    pass


@projects.post("/reports")
def export_report(background: BackgroundTasks, parts: int = 3) -> dict[str, Any]:
    """A ``def`` endpoint (Starlette's thread pool), a fan-out, and a background task: all scoped."""
    instrument.track(ReportExportStarted(parts=parts))
    rendered = list(pool.map(render_part, range(parts)))
    background.add_task(email_report)
    return {"parts": rendered}


app.include_router(projects)
