"""celfarm: a Python client for the celfarm render farm (standard library only).

    from celfarm import Client

    client = Client("https://farm.example.com", "cf_...")
    shot = client.submit(["sc010/sc010_0001.png", "sc010/sc010_0002.png"], "ref.png",
                         settings={"mode": "full", "steps": 20}, name="sc010 chase",
                         external_ids={"show": "MOON", "sequence": "sq01", "shot": "sc010"})
    done = client.wait(shot["id"], on_progress=lambda v: print(v["state"], v["progress"]))
    paths = client.download(shot["id"], "out/sc010")        # out/sc010/sc010_0001.png, ...

Shot QA: each frame (``frames``) carries its scores (``qa``), ``needsReview`` and earlier
``takes`` (typed as :class:`Frame`); ``approve`` and ``rerender`` review frames, and
``qa_thresholds`` / ``set_qa_thresholds`` read and set the project's thresholds.

Every API error raises ``CelfarmError(status, code, field, message)``; 429 and 503 answers are
retried after their ``Retry-After``. What the farm adjusted in a submit's settings (a size fitted
to the model pack, a knob the mode does not use) is issued as a ``SettingsWarning`` and kept in
the shot's ``warnings``. ``verify_webhook`` checks the Standard Webhooks signature of
a delivery (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, TypedDict, Union

__version__ = "0.1.0"

__all__ = [
    "Client",
    "CelfarmError",
    "ShotFailed",
    "WaitTimeout",
    "WebhookVerificationError",
    "SettingsWarning",
    "verify_webhook",
    "sign_webhook",
    "TERMINAL_STATES",
    "DEFAULT_API",
    "QA_SCORES",
    "Frame",
    "FrameQa",
    "FrameReview",
    "FrameTake",
    "QaScores",
    "QaThresholds",
    "QaThresholdsView",
]

DEFAULT_API = "http://127.0.0.1:8080"
TERMINAL_STATES = ("completed", "failed", "cancelled")

PathLike = Union[str, "os.PathLike[str]"]

QA_SCORES = ("palette", "flickerMean", "flickerShare", "lineFidelity")
"""The shot QA scores, in the API's order: ``palette`` and ``flickerMean`` are ΔE00 (0–100, flagged
above their thresholds), ``flickerShare`` a share 0–1 (flagged above), ``lineFidelity`` a share 0–1
(flagged below)."""

_RETRYABLE = (429, 503)
_MAX_WAIT = 60.0
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


class CelfarmError(Exception):
    """An error answer of the API: ``{"error": {"code", "field", "message"}}`` and its HTTP status.

    ``status`` is 0 when the API could not be reached at all.
    """

    def __init__(self, status: int, code: str, field: Optional[str] = None, message: str = "") -> None:
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        super().__init__(f"[{code}]{f' ({field})' if field else ''}: {message}")


class ShotFailed(Exception):
    """Raised by ``Client.wait`` when the shot ended ``failed`` or ``cancelled``; ``shot`` is its last view."""

    def __init__(self, shot: Dict[str, Any]) -> None:
        self.shot = shot
        self.state: str = shot.get("state", "")
        err = shot.get("error") or {}
        detail = f": [{err.get('code')}] {err.get('message')}" if err else ""
        super().__init__(f"shot {shot.get('id')} {self.state}{detail}")


class WaitTimeout(TimeoutError):
    """Raised by ``Client.wait`` when the shot did not finish in time; ``shot`` is its last view."""

    def __init__(self, shot: Dict[str, Any], timeout: float) -> None:
        self.shot = shot
        super().__init__(f"shot {shot.get('id')} still {shot.get('state')} after {timeout:g} s")


class SettingsWarning(UserWarning):
    """A value the farm adjusted or will not use when it resolved a shot's settings.

    ``code`` (``SIZE_FITTED``, ``IGNORED``), ``field`` (``settings.width``, ``background``) and
    ``message`` are the API's; the shot view lists the same under ``warnings``.
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.code = code
        self.field = field
        self.message = message


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature, timestamp or headers do not check out."""


# -- the frame view, as the API sends it (plain dicts; these types document their keys) --------


class QaScores(TypedDict, total=False):
    """A frame's shot QA scores. A score is absent until it has been computed and ``None`` when it
    cannot be for this frame (the first frame's flicker, a sketch without lines)."""

    palette: Optional[float]
    flickerMean: Optional[float]
    flickerShare: Optional[float]
    lineFidelity: Optional[float]


class QaThresholds(TypedDict, total=False):
    """Shot QA thresholds: ``palette`` and ``flickerMean`` ΔE00 0–100 (flagged above),
    ``flickerShare`` 0–1 (flagged above), ``lineFidelity`` 0–1 (flagged below)."""

    palette: float
    flickerMean: float
    flickerShare: float
    lineFidelity: float


class _FrameQaBase(TypedDict):
    scores: QaScores
    thresholds: QaThresholds
    flagged: List[str]


class FrameQa(_FrameQaBase, total=False):
    """Shot QA of a completed frame: its ``scores``, the ``thresholds`` they were judged against and
    ``flagged``, the names of the scores past them (a frame with any is flagged for review)."""

    flickerMeasuredShare: Optional[float]


class _FrameReviewBase(TypedDict):
    state: str
    at: str


class FrameReview(_FrameReviewBase, total=False):
    """A take approved as it is: ``state`` ``"approved"``, ``at`` (ISO time) and ``by`` (the key's id)."""

    by: str


class _FrameTakeBase(TypedDict):
    round: int
    seed: int
    output: str
    replacedAt: str


class FrameTake(_FrameTakeBase, total=False):
    """An earlier take of a frame rendered again (``rerender``): the round that rendered it, its seed,
    its output key and the URLs of its images, its scores and review, and when it was replaced."""

    outputUrl: str
    previewUrl: str
    qa: FrameQa
    review: FrameReview


class _FrameBase(TypedDict):
    frame: int
    fileName: str
    state: str
    attempts: int
    seed: int
    input: str
    needsReview: bool


class Frame(_FrameBase, total=False):
    """One frame of ``GET /v1/shots/:id/frames`` (``frames``, ``frame_page``, ``frame``, ``approve``).

    ``needsReview`` is true for a completed frame flagged by shot QA and not approved; ``qa`` holds
    its scores once completed; ``review`` its approval; ``takes`` its earlier takes, oldest first.
    """

    stage: str
    step: int
    steps: int
    worker: str
    error: Dict[str, Any]
    inputUrl: str
    output: str
    outputUrl: str
    previewUrl: str
    qa: FrameQa
    review: FrameReview
    takes: List[FrameTake]


class QaThresholdsView(TypedDict):
    """``GET``/``PUT /v1/qa/thresholds``: what the project set, and what a shot submitted now is
    judged against when its submit sets none (project over the farm's over the defaults)."""

    project: QaThresholds
    effective: QaThresholds


def _retry_after(value: Optional[str], attempt: int) -> float:
    """Seconds to wait before retrying: the Retry-After header (seconds or HTTP date), else a backoff."""
    if value:
        value = value.strip()
        try:
            return min(_MAX_WAIT, max(0.0, float(value)))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
            return min(_MAX_WAIT, max(0.0, when.timestamp() - time.time()))
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return min(_MAX_WAIT, 0.5 * 2**attempt)


def _safe_filename(name: str) -> str:
    # The farm keeps a frame's file name (its output is named after it): change only what a
    # multipart header cannot carry.
    return re.sub(r'["\\/\x00-\x1f\x7f]', "_", name) or "file"


def _output_name(frame: Mapping[str, Any]) -> str:
    """The local name of a frame's output: the output key's own (``sh010_0001.png``, after its input), else its number."""
    name = os.path.basename(str(frame.get("output") or ""))
    return name if name not in ("", ".", "..") else f"{int(frame['frame']):05d}.png"


class _Multipart:
    """multipart/form-data built by hand, with a random boundary."""

    def __init__(self) -> None:
        self.boundary = f"celfarm-{uuid.uuid4().hex}"
        self._chunks: List[bytes] = []

    def field(self, name: str, value: str) -> None:
        self._chunks.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode("utf-8")
            + value.encode("utf-8")
            + b"\r\n"
        )

    def file(self, name: str, filename: str, data: bytes, content_type: str) -> None:
        head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{_safe_filename(filename)}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        self._chunks.append(head.encode("utf-8") + data + b"\r\n")

    def body(self) -> bytes:
        return b"".join(self._chunks) + f"--{self.boundary}--\r\n".encode("ascii")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"


def _read_image(item: Union[PathLike, bytes], field: str, default_name: str) -> Tuple[str, bytes, str]:
    if isinstance(item, (bytes, bytearray)):
        return default_name, bytes(item), "application/octet-stream"
    path = os.fspath(item)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CelfarmError(0, "MISSING_INPUT", field, f"cannot read {path} ({e.strerror or e})") from None
    name = os.path.basename(path)
    return name, data, _MIME.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


class Client:
    """A client of one celfarm API.

    ``api_url`` and ``key`` default to the environment (``CELFARM_API``, ``CELFARM_KEY``); the key
    is sent as ``Authorization: Bearer <key>``. ``project`` (default ``CELFARM_PROJECT``) is named in
    submits when set; unset, the API uses the key's own project. ``timeout`` is per HTTP request,
    in seconds.
    """

    def __init__(
        self,
        api_url: Optional[str] = None,
        key: Optional[str] = None,
        timeout: float = 30,
        *,
        project: Optional[str] = None,
        max_retries: int = 5,
    ) -> None:
        self.api_url = (api_url or os.environ.get("CELFARM_API") or DEFAULT_API).rstrip("/")
        self.key = key if key is not None else (os.environ.get("CELFARM_KEY") or None)
        self.timeout = timeout
        self.project = project or os.environ.get("CELFARM_PROJECT") or None
        self.max_retries = max_retries
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"Client({self.api_url!r}, key={'***' if self.key else None})"

    # -- transport ---------------------------------------------------------------------------

    def _auth(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def _open(self, req: urllib.request.Request) -> Tuple[int, Dict[str, str], bytes]:
        """Sends ``req``, retrying 429/503; returns status, headers (lowercase) and body of the last answer."""
        for attempt in range(self.max_retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as res:
                    return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
            except urllib.error.HTTPError as e:
                status, headers, data = e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()
                e.close()
                if status in _RETRYABLE and attempt < self.max_retries:
                    self._sleep(_retry_after(headers.get("retry-after"), attempt))
                    continue
                return status, headers, data
            except urllib.error.URLError as e:
                raise CelfarmError(0, "UNREACHABLE", None, f"cannot reach {req.full_url}: {e.reason}") from None
            except OSError as e:  # timeouts, resets
                raise CelfarmError(0, "UNREACHABLE", None, f"cannot reach {req.full_url}: {e}") from None
        raise AssertionError("unreachable")

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        json_body: Any = None,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Tuple[int, Any]:
        url = self.api_url + path
        q = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
        if q:
            url += "?" + urllib.parse.urlencode(q)
        h = {"Accept": "application/json", **self._auth(), **(headers or {})}
        data = body
        if json_body is not None:
            data = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if content_type:
            h["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, headers=h, method=method)
        status, _headers, raw = self._open(req)
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except ValueError:
                parsed = None
        if status >= 400:
            err = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(err, dict) and isinstance(err.get("code"), str):
                raise CelfarmError(status, err["code"], err.get("field"), err.get("message", ""))
            text = raw.decode("utf-8", "replace").strip()[:200]
            raise CelfarmError(status, f"HTTP_{status}", None, text or f"status {status}")
        if raw and parsed is None:
            raise CelfarmError(status, "BAD_RESPONSE", None, f"{method} {path}: the API answered something that is not JSON")
        return status, parsed

    # -- shots -------------------------------------------------------------------------------

    def submit(
        self,
        frames: Sequence[Union[PathLike, bytes]],
        reference: Union[PathLike, bytes],
        background: Optional[Union[PathLike, bytes]] = None,
        settings: Optional[Mapping[str, Any]] = None,
        priority: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        *,
        project: Optional[str] = None,
        failed_frame_share: Optional[float] = None,
        name: Optional[str] = None,
        external_ids: Optional[Mapping[str, str]] = None,
        qa_thresholds: Optional[Mapping[str, float]] = None,
        consistency: Optional[Mapping[str, Any]] = None,
    ) -> Dict[str, Any]:
        """Submits a shot: ``frames`` in order, a colour ``reference``, optional ``background``.

        ``name`` is what the studio calls the shot (default: derived from the frames' file names,
        ``sh010_0001.png`` → ``sh010``); ``external_ids`` its ids in the studio's tracking,
        ``{"show": ..., "sequence": ..., "shot": ...}``. Each frame keeps its file name (frames given
        as bytes are ``00001.png``, ...) and its output is named after it.
        ``settings`` are the pipeline knobs (``{"mode": "full", "steps": 20}``); the view's
        ``settings`` are what the farm will render (resolved against its model pack), and each of
        its ``warnings`` is also issued as a :class:`SettingsWarning`. Without an
        ``idempotency_key`` a fresh one is made for this call, so the client's own retries never
        create two shots; pass the same key again to make a repeated call return the first shot.
        ``qa_thresholds`` judges this shot's frames by its own shot QA thresholds, each over the
        project's (``{"palette": 8, "lineFidelity": 0.5}``; see :class:`QaThresholds`); the view's
        ``qaThresholds`` are those that apply. ``consistency`` keeps the frames alike:
        ``{"sharedNoise": True}`` (every frame from the shot's seed), ``{"paletteLock": "reference"}``
        (or ``"approved"``: outputs' flat colours pulled onto that palette, lines and shading kept),
        ``{"referenceChain": "approved"}`` (frames render from the nearest approved frame before them);
        all off by default. Returns the shot view (``id``, ``state``, ``frames``, ...).
        """
        if not frames:
            raise CelfarmError(0, "MISSING_INPUT", "frames", "at least one frame is required")
        request: Dict[str, Any] = {"settings": dict(settings or {})}
        if project or self.project:
            request["project"] = project or self.project
        if priority is not None:
            request["priority"] = priority
        if failed_frame_share is not None:
            request["failedFrameShare"] = failed_frame_share
        if name is not None:
            request["name"] = name
        if external_ids:
            request["externalIds"] = dict(external_ids)
        if qa_thresholds:
            request["qa"] = {"thresholds": dict(qa_thresholds)}
        if consistency:
            request["consistency"] = dict(consistency)
        form = _Multipart()
        form.field("request", json.dumps(request))
        name, data, ctype = _read_image(reference, "reference", "reference.png")
        form.file("reference", name, data, ctype)
        if background is not None:
            name, data, ctype = _read_image(background, "background", "background.png")
            form.file("background", name, data, ctype)
        for i, frame in enumerate(frames):
            name, data, ctype = _read_image(frame, f"frames[{i}]", f"{i + 1:05d}.png")
            form.file("frames", name, data, ctype)
        key = idempotency_key or f"py-{uuid.uuid4().hex}"
        _, view = self._request("POST", "/v1/shots", body=form.body(), content_type=form.content_type, headers={"Idempotency-Key": key})
        for w in (view.get("warnings") if isinstance(view, dict) else None) or []:
            warnings.warn(SettingsWarning(w.get("code", ""), w.get("field", ""), w.get("message", "")), stacklevel=2)
        return view

    def get(self, shot_id: str) -> Dict[str, Any]:
        """The shot view: state, frame ``counts``, progress, ETA and the ``active`` frames (stage, sampler step, worker).

        The frames themselves, with the URLs of their images, are read with ``frames`` (or ``frame_page``).
        """
        return self._request("GET", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}")[1]

    def frame_page(
        self,
        shot_id: str,
        state: Union[str, Sequence[str], None] = None,
        *,
        flagged: Optional[bool] = None,
        review: Optional[str] = None,
        cursor: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Tuple[List[Frame], Optional[str]]:
        """One page of the shot's frames, in frame order (``limit`` 1–500, default 100), and the cursor of the next page (None at the end).

        Each frame (:class:`Frame`): ``fileName`` (its original file name), ``state``, ``stage``/``step``/``steps`` while active, ``attempts``, ``worker``, ``seed``,
        ``error``, ``inputUrl``, ``outputUrl``, ``previewUrl`` for the images that exist, and shot QA: ``qa`` (scores, thresholds,
        ``flagged``), ``needsReview``, ``review`` and earlier ``takes``. ``state`` keeps frames in one state or several
        (``("failed", "cancelled")``); ``flagged=True`` only frames flagged by shot QA (``False``: the others);
        ``review="needed"`` only flagged frames not approved yet, ``review="approved"`` the approved ones.
        """
        states = state if state is None or isinstance(state, str) else ",".join(state)
        query = {
            "state": states,
            "flagged": None if flagged is None else ("true" if flagged else "false"),
            "review": review,
            "cursor": cursor,
            "limit": limit,
        }
        _, page = self._request("GET", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}/frames", query=query)
        return list(page.get("frames", [])), page.get("next")

    def frames(
        self,
        shot_id: str,
        state: Union[str, Sequence[str], None] = None,
        *,
        flagged: Optional[bool] = None,
        review: Optional[str] = None,
        page_size: int = 500,
    ) -> Iterator[Frame]:
        """Every frame of the shot (those ``state``, ``flagged`` and ``review`` keep, as in ``frame_page``), in frame order, fetching pages as needed.

        ``client.frames(shot_id, review="needed")`` lists the frames waiting for a person.
        """
        cursor: Optional[str] = None
        while True:
            frames, cursor = self.frame_page(shot_id, state, flagged=flagged, review=review, cursor=cursor, limit=page_size)
            yield from frames
            if not cursor:
                return

    def frame(self, shot_id: str, frame: int) -> Frame:
        """One frame of the shot (numbered from 1). Raises ``CelfarmError`` (404 ``NOT_FOUND``) when the shot has no such frame."""
        return self._request("GET", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}/frames/{int(frame)}")[1]

    def approve(self, shot_id: str, frame: int) -> Frame:
        """Approves a completed frame's take as it is: it no longer needs review (``needsReview`` false,
        ``review["state"] == "approved"``); its scores and flags stay. Idempotent; a re-render clears it.

        Returns the frame. ``CelfarmError`` 404 for a frame the shot does not have, 409
        ``STATE_CONFLICT`` for a frame that is not completed.
        """
        sid = urllib.parse.quote(shot_id, safe="")
        return self._request("POST", f"/v1/shots/{sid}/frames/{int(frame)}/approve")[1]

    def rerender(self, shot_id: str, frame: int, seed: Optional[int] = None) -> Dict[str, Any]:
        """Renders one frame of a finished shot again with ``seed`` (default: a random one) as a new round.

        The take it replaces (seed, output, preview, scores, review) moves to the frame's ``takes``;
        the shot runs again (``state`` running, ``round`` + 1): ``wait`` for it, then read the frame.
        Returns the shot view. ``CelfarmError`` 409 ``STATE_CONFLICT`` while the shot runs or for a
        frame neither completed nor failed, 409 ``NOT_RETRYABLE`` for a frame that failed on bad
        input, 400 (field ``seed``) for a bad seed.
        """
        body: Dict[str, Any] = {} if seed is None else {"seed": seed}
        sid = urllib.parse.quote(shot_id, safe="")
        return self._request("POST", f"/v1/shots/{sid}/frames/{int(frame)}/rerender", json_body=body)[1]

    def qa_thresholds(self) -> QaThresholdsView:
        """The project's shot QA thresholds: ``project`` (what it set) and ``effective`` (what a shot
        submitted now is judged against when its submit sets none)."""
        return self._request("GET", "/v1/qa/thresholds")[1]

    def set_qa_thresholds(self, **thresholds: float) -> QaThresholdsView:
        """Replaces the project's shot QA thresholds with these (admin scope):
        ``set_qa_thresholds(palette=8, lineFidelity=0.5)``; with none, clears them.

        Shots submitted from then on are judged against them; shots already submitted keep theirs.
        Returns what is set and what applies, as ``qa_thresholds``. An unknown score or a value out
        of range (:class:`QaThresholds`) raises ``CelfarmError`` 400 naming it in ``field``.
        """
        return self._request("PUT", "/v1/qa/thresholds", json_body=dict(thresholds))[1]

    def list(
        self,
        state: Optional[str] = None,
        *,
        project: Optional[str] = None,
        limit: Optional[int] = None,
        before: Optional[str] = None,
        q: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """One page of shots, newest first (``limit`` 1–500, default 50); see ``iter_shots`` for all.

        ``q`` keeps the shots whose name, studio ids or id contain it (case-insensitive); a search
        looks at a bounded number of shots per page, so ``iter_shots(q=...)`` finds them all.
        """
        return self._list_page(state, project, limit, before, q)[0]

    def _list_page(self, state: Optional[str], project: Optional[str], limit: Optional[int], before: Optional[str], q: Optional[str] = None) -> Tuple[List[Dict[str, Any]], Optional[str]]:
        _, page = self._request("GET", "/v1/shots", query={"state": state, "project": project, "limit": limit, "before": before, "q": q})
        return list(page.get("shots", [])), page.get("next")

    def iter_shots(self, state: Optional[str] = None, *, project: Optional[str] = None, page_size: int = 100, q: Optional[str] = None) -> Iterator[Dict[str, Any]]:
        """Every shot (whose name, studio ids or id contain ``q``, when given), newest first, fetching pages as needed."""
        before: Optional[str] = None
        while True:
            shots, before = self._list_page(state, project, page_size, before, q)
            yield from shots
            if not before:
                return

    def wait(
        self,
        shot_id: str,
        timeout: Optional[float] = None,
        poll: float = 0.5,
        on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
    ) -> Dict[str, Any]:
        """Polls the shot until it is completed; returns its last view.

        ``on_progress(view)`` is called after every poll. Raises ``ShotFailed`` when the shot ends
        failed or cancelled and ``WaitTimeout`` after ``timeout`` seconds. Up to 20 consecutive
        transient errors (unreachable, 5xx) are tolerated.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        errors = 0
        view: Dict[str, Any] = {"id": shot_id, "state": "unknown"}
        while True:
            try:
                view = self.get(shot_id)
                errors = 0
            except CelfarmError as e:
                errors += 1
                if not (e.status == 0 or e.status >= 500) or errors >= 20:
                    raise
            else:
                if on_progress is not None:
                    on_progress(view)
                state = view.get("state")
                if state == "completed":
                    return view
                if state in ("failed", "cancelled"):
                    raise ShotFailed(view)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(view, timeout or 0)
            time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))

    def download(self, shot_id: str, out_dir: PathLike) -> List[str]:
        """Writes the outputs of the shot's completed frames to ``out_dir``, each named after its input
        (``sh010_0001.jpg`` → ``sh010_0001.png``; ``00001.png``, ... for frames sent as bytes); returns the
        paths in frame order."""
        os.makedirs(out_dir, exist_ok=True)
        paths: List[str] = []
        for frame in self.frames(shot_id, "completed"):
            url = frame.get("outputUrl")
            if not url:
                continue
            path = os.path.join(os.fspath(out_dir), _output_name(frame))
            with open(path, "wb") as f:
                f.write(self._fetch(url))
            paths.append(path)
        return paths

    def _fetch(self, url: str) -> bytes:
        full = urllib.parse.urljoin(self.api_url + "/", url)
        same_origin = urllib.parse.urlsplit(full)[:2] == urllib.parse.urlsplit(self.api_url)[:2]
        # Presigned storage URLs carry their own signature: the API key goes to the API only.
        req = urllib.request.Request(full, headers=self._auth() if same_origin else {}, method="GET")
        status, _, data = self._open(req)
        if status >= 400:
            raise CelfarmError(status, "DOWNLOAD_FAILED", None, f"GET {full.split('?')[0]}: {status}")
        return data

    def cancel(self, shot_id: str) -> Dict[str, Any]:
        """Cancels the shot (idempotent); returns its view."""
        return self._request("POST", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}/cancel")[1]

    def retry(self, shot_id: str) -> Dict[str, Any]:
        """Runs the failed frames of a finished shot again; returns its view."""
        return self._request("POST", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}/retry")[1]

    def whoami(self) -> Dict[str, Any]:
        """The project, key id, name and scopes of the key in use."""
        return self._request("GET", "/v1/session")[1]

    def delete(self, shot_id: str) -> None:
        """Cancels the shot, then deletes its objects and records."""
        self._request("DELETE", f"/v1/shots/{urllib.parse.quote(shot_id, safe='')}")

    # -- API keys (admin scope) ----------------------------------------------------------------

    def create_key(self, name: str, scopes: Sequence[str] = ("submit", "read"), rate_limit: Optional[float] = None) -> Dict[str, Any]:
        """Creates an API key; the answer's ``token`` is shown only this once."""
        body: Dict[str, Any] = {"name": name, "scopes": list(scopes)}
        if rate_limit is not None:
            body["rateLimit"] = rate_limit
        return self._request("POST", "/v1/keys", json_body=body)[1]

    def list_keys(self) -> List[Dict[str, Any]]:
        return _list_of(self._request("GET", "/v1/keys")[1], "keys")

    def revoke_key(self, key_id: str) -> None:
        self._request("DELETE", f"/v1/keys/{urllib.parse.quote(key_id, safe='')}")

    # -- webhooks (admin scope) ----------------------------------------------------------------

    def create_webhook(self, url: str, events: Sequence[str] = ("*",), description: Optional[str] = None) -> Dict[str, Any]:
        """Registers an endpoint; the answer's ``secret`` (``whsec_...``) verifies its deliveries."""
        body: Dict[str, Any] = {"url": url, "events": list(events)}
        if description is not None:
            body["description"] = description
        return self._request("POST", "/v1/webhooks", json_body=body)[1]

    def list_webhooks(self) -> List[Dict[str, Any]]:
        return _list_of(self._request("GET", "/v1/webhooks")[1], "webhooks")

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"/v1/webhooks/{urllib.parse.quote(webhook_id, safe='')}")

    def deliveries(self, webhook_id: str) -> List[Dict[str, Any]]:
        return _list_of(self._request("GET", f"/v1/webhooks/{urllib.parse.quote(webhook_id, safe='')}/deliveries")[1], "deliveries")

    def redeliver(self, webhook_id: str, event_id: str) -> Any:
        wid, eid = urllib.parse.quote(webhook_id, safe=""), urllib.parse.quote(event_id, safe="")
        return self._request("POST", f"/v1/webhooks/{wid}/deliveries/{eid}/redeliver")[1]

    def ping_webhook(self, webhook_id: str) -> Any:
        return self._request("POST", f"/v1/webhooks/{urllib.parse.quote(webhook_id, safe='')}/ping")[1]


def _list_of(body: Any, name: str) -> List[Dict[str, Any]]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for k in (name, "items"):
            if isinstance(body.get(k), list):
                return body[k]
        for v in body.values():
            if isinstance(v, list):
                return v
    return []


# -- webhooks: Standard Webhooks signatures ---------------------------------------------------


def _secret_key(secret: str) -> bytes:
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the webhook secret is not valid base64 (expected whsec_<base64>)") from None


def _as_bytes(body: Union[bytes, bytearray, str]) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign_webhook(secret: str, msg_id: str, timestamp: Union[int, float, str], body: Union[bytes, str]) -> str:
    """The ``webhook-signature`` value of a delivery: ``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body``."""
    ts = str(int(float(timestamp)))
    mac = hmac.new(_secret_key(secret), msg_id.encode("utf-8") + b"." + ts.encode("ascii") + b"." + _as_bytes(body), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: Union[bytes, str],
    tolerance: float = 300,
    *,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    """Checks a webhook delivery and returns its parsed JSON body.

    ``body`` must be the raw request body, byte for byte. Headers are looked up case-insensitively:
    ``webhook-id``, ``webhook-timestamp`` (unix seconds, within ``tolerance`` seconds of now) and
    ``webhook-signature`` (space-separated ``v1,<base64>``; any one matching is enough, compared in
    constant time). Raises ``WebhookVerificationError`` otherwise.
    """
    h = {str(k).lower(): v for k, v in headers.items()}
    msg_id, ts_text, sig_header = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not msg_id or not ts_text or not sig_header:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        ts = int(str(ts_text).strip())
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if ts < current - tolerance:
        raise WebhookVerificationError("message timestamp too old")
    if ts > current + tolerance:
        raise WebhookVerificationError("message timestamp too new")
    expected = sign_webhook(secret, msg_id, ts, body).split(",", 1)[1].encode("ascii")
    matched = False
    for sig in str(sig_header).split():
        version, _, value = sig.partition(",")
        if version != "v1":
            continue
        # Keep comparing after a match, so the time taken does not depend on which one matched.
        matched |= hmac.compare_digest(expected, value.encode("utf-8", "replace"))
    if not matched:
        raise WebhookVerificationError("no matching signature")
    try:
        payload = json.loads(_as_bytes(body).decode("utf-8"))
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload
