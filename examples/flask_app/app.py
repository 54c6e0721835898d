"""The app: one WSGI middleware line binds the ids; a streamed export tracks each chunk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, Response

import instrument
from instrument import EventName, Track
from instrument.integrations.wsgi import AnalyticsWSGIMiddleware


class Events(EventName):
    EXPORT_CHUNK_SENT = "Export Chunk Sent"


class ExportChunkSent(Track, event=Events.EXPORT_CHUNK_SENT, scope="project"):
    chunk: int


# A stand-in for the app's session store. The user id comes from a session the server created and
# checks, never from a header the client fills in (anyone could send "X-User-Id: 1").
SESSIONS = {"demo-session-42": 42}


def user_id_of(request: Any) -> int | None:
    """The user of the request's session cookie; None (anonymous) for no or an unknown session."""
    return SESSIONS.get(request.cookies.get("session", ""))


def project_id_of(request: Any) -> int | None:
    """The project from the path (/projects/<id>/...), known to WSGI before routing."""
    parts = request.path.strip("/").split("/")
    return int(parts[1]) if len(parts) > 1 and parts[0] == "projects" and parts[1].isdigit() else None


app = Flask(__name__)
app.wsgi_app = AnalyticsWSGIMiddleware(  # type: ignore[method-assign]
    app.wsgi_app, resolvers={"user_id": user_id_of, "project_id": project_id_of}
)


@app.get("/projects/<int:project_id>/export")
def export(project_id: int) -> Response:
    def rows() -> Iterator[str]:
        for chunk in range(3):
            # Runs while the server streams the response, after this view returned: still scoped.
            instrument.track(ExportChunkSent(chunk=chunk))
            yield f"project {project_id} chunk {chunk}\n"

    return Response(rows(), mimetype="text/plain")
