"""The review web app: Starlette routes over one ``EpisodeStore``.

Pages (plain HTML/CSS/JS from ``static/``): ``/`` the episode list, ``/episode/<id>`` one episode.
JSON API, all under ``/api``:

* ``GET  /api/info``                          store, reviewer, label sets, the default label set
* ``GET  /api/episodes?filters&sort&order&offset&limit``   one page of the list (catalog.ListQuery)
* ``GET  /api/episodes/<id>?labels=SET``      the episode page's data (episode_data.episode_payload)
* ``GET  /api/episodes/<id>/neighbours?...``  previous / next / next unlabelled in the list's order
* ``GET  /api/episodes/<id>/video``           the cameras as WebM (encoded on first request; Range requests)
* ``POST /api/episodes/<id>/label``           ``{"outcome", "version", "note"?, "failure_time"?, "reviewer"?}``
* ``GET  /api/history``                       every label change in the store, newest first

The server writes nothing but success labels (through ``EpisodeStore.set_success``) and ``cache/review/``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from recap.data.labels import check_label_set_name
from recap.data.schema import EPISODE_ID
from recap.data.store import MAX_REVIEWER_CHARS, EpisodeStore
from recap.errors import ConfigError, LabelError, RecapError, SchemaError, StaleLabelError, StoreError
from recap.review import episode_data
from recap.review.catalog import Catalog, ListQuery
from recap.review.security import AccessGuard
from recap.review.video import MEDIA_TYPE, NoVideo, VideoCache

STATIC = Path(str(resources.files("recap.review") / "static"))
OUTCOMES = {"success": True, "failure": False, "unlabelled": None}


class NotFound(RecapError):
    """An episode id that is well formed but not in the store."""


class Review:
    """The state behind the routes: the store, its list and video caches, the reviewer and label set."""

    def __init__(self, store: EpisodeStore, reviewer: str, label_set: str | None) -> None:
        if label_set is not None:
            store.label_set_metadata(check_label_set_name(label_set))  # refuse a missing set at start-up
        self.store = store
        self.reviewer = reviewer
        self.label_set = label_set if label_set is not None else episode_data.latest_label_set(store)
        self.catalog = Catalog(store)
        self.videos = VideoCache(store)

    def episode_id(self, request: Request) -> str:
        """The path's episode id, checked to be well formed (no path tricks) and in the store."""
        episode_id = request.path_params["episode_id"]
        if not EPISODE_ID.match(episode_id):
            raise SchemaError(f"episode id {episode_id!r} is not valid: letters, digits, '-' and '_' only")
        try:
            self.store.meta(episode_id)
        except StoreError as exc:
            raise NotFound(str(exc)) from exc
        return episode_id

    # ---------------------------------------------------------------- routes
    def info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "store": str(self.store.root),
                "reviewer": self.reviewer,
                "label_sets": self.store.label_sets(),
                "label_set": self.label_set,
                "cameras": list(self.store.spec.camera_names),
                "fps": self.store.spec.fps,
            }
        )

    def episodes(self, request: Request) -> Response:
        return JSONResponse(self.catalog.query(ListQuery.parse(request.query_params)))

    def episode(self, request: Request) -> Response:
        episode_id = self.episode_id(request)
        # ?labels=NAME picks a label set, ?labels= picks none, no parameter the default
        name = request.query_params.get("labels", self.label_set) or None
        if name is not None:
            check_label_set_name(name)
        return JSONResponse(episode_data.episode_payload(self.store, episode_id, name))

    def neighbours(self, request: Request) -> Response:
        episode_id = self.episode_id(request)
        return JSONResponse(self.catalog.neighbours(episode_id, ListQuery.parse(request.query_params)))

    def video(self, request: Request) -> Response:
        path = self.videos.get(self.episode_id(request))
        return FileResponse(path, media_type=MEDIA_TYPE, content_disposition_type="inline")

    async def label(self, request: Request) -> Response:
        episode_id = self.episode_id(request)
        try:
            body = await request.json()
        except ValueError as exc:
            raise LabelError(f"the label request's body is not JSON ({exc})") from exc
        args = _label_args(body, self.reviewer)
        # the write takes a file lock and fsyncs: keep it off the event loop
        await run_in_threadpool(lambda: self.store.set_success(episode_id, **args))
        return JSONResponse(episode_data.label_state(self.store, episode_id))

    def history(self, request: Request) -> Response:
        return JSONResponse({"history": list(reversed(self.store.label_history()))})


def _label_args(body: Any, default_reviewer: str) -> dict[str, Any]:
    """``set_success`` arguments from the browser's JSON, or a ``LabelError`` naming what is wrong."""
    if not isinstance(body, dict):
        raise LabelError(f"the label request must be a JSON object, found {type(body).__name__}")
    unknown = sorted(set(body) - {"outcome", "version", "note", "failure_time", "reviewer"})
    if unknown:
        raise LabelError(f"unknown fields {unknown} in the label request")
    outcome = body.get("outcome")
    if outcome not in OUTCOMES:
        raise LabelError(f"outcome: expected one of {list(OUTCOMES)}, found {outcome!r}")
    if "version" not in body:
        raise LabelError("version: the label version the page was loaded with is required (compare-and-set)")
    reviewer = body.get("reviewer") or default_reviewer
    if not isinstance(reviewer, str) or len(reviewer) > MAX_REVIEWER_CHARS:
        raise LabelError(f"reviewer: expected a name of at most {MAX_REVIEWER_CHARS} characters")
    return {
        "success": OUTCOMES[outcome],
        "by": reviewer,
        "note": body.get("note") or "",
        "failure_time": body.get("failure_time"),
        "expected_version": body["version"],
    }


def _page(name: str) -> Callable[[Request], Response]:
    def page(request: Request) -> Response:
        return FileResponse(STATIC / name, media_type="text/html")

    return page


def _status(exc: Exception) -> int:
    if isinstance(exc, StaleLabelError):
        return 409
    if isinstance(exc, NotFound | NoVideo):
        return 404
    if isinstance(exc, LabelError | SchemaError | ConfigError):
        return 400
    return 500


def _error_handler(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=_status(exc))


def create_app(
    store: EpisodeStore, *, reviewer: str, label_set: str | None = None, token: str | None = None
) -> Starlette:
    """The review app over ``store``; ``token=None`` serves loopback only (see ``security``)."""
    review = Review(store, reviewer, label_set)

    def episode_page(request: Request) -> Response:
        review.episode_id(request)
        return FileResponse(STATIC / "episode.html", media_type="text/html")

    routes = [
        Route("/", _page("index.html")),
        Route("/episode/{episode_id}", episode_page),
        Route("/api/info", review.info),
        Route("/api/episodes", review.episodes),
        Route("/api/episodes/{episode_id}", review.episode),
        Route("/api/episodes/{episode_id}/neighbours", review.neighbours),
        Route("/api/episodes/{episode_id}/video", review.video),
        Route("/api/episodes/{episode_id}/label", review.label, methods=["POST"]),
        Route("/api/history", review.history),
        Route("/favicon.ico", lambda request: Response(status_code=204)),  # no icon, and no 404 in the log
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(AccessGuard, token=token)],
        exception_handlers={RecapError: _error_handler},
    )
    app.state.review = review
    return app
