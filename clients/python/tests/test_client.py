"""Tests of the celfarm Python client.

The webhook and transport tests need nothing else. The farm tests run against a real farm named by
CELFARM_API (and CELFARM_KEY); `clients/python/test/python-client.test.ts` starts one and runs
this file, so `npm test` covers them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import signal
import sys
import tempfile
import threading
import time
import unittest
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from celfarm import (  # noqa: E402
    CelfarmError,
    Client,
    SettingsWarning,
    ShotFailed,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

SIZE = 128


def write_png(path: Path, width: int, height: int, pixel) -> None:
    """An 8-bit RGB PNG, by hand: signature, IHDR, one zlib IDAT (filter 0 rows), IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_size(data: bytes):
    """(width, height) from a PNG's IHDR; asserts the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def sketch(k: int):
    """Black line art on white: a circle outline that moves with the frame number, and a border."""
    cx, cy, r = 40 + 24 * k, 64, 22

    def px(x: int, y: int):
        d = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
        line = abs(d - r) < 1.5 or x in (4, SIZE - 5) or y in (4, SIZE - 5)
        return (0, 0, 0) if line else (255, 255, 255)

    return px


def reference(x: int, _y: int):
    return (230, 20, 20) if x < SIZE // 2 else (150, 150, 150)


FARM = os.environ.get("CELFARM_API")


@unittest.skipUnless(FARM, "set CELFARM_API (and CELFARM_KEY) to run against a farm")
class FarmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = Path(cls.tmp.name)
        cls.frames = []
        for k in range(2):
            p = cls.dir / f"{k + 1:05d}.png"
            write_png(p, SIZE, SIZE, sketch(k))
            cls.frames.append(p)
        cls.reference = cls.dir / "reference.png"
        write_png(cls.reference, SIZE, SIZE, reference)
        cls.client = Client(FARM, os.environ.get("CELFARM_KEY"), timeout=30)
        cls.settings = {"steps": 4, "width": SIZE, "height": SIZE, "seed": 11}

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tmp.cleanup()

    def test_submit_wait_download(self) -> None:
        shot = self.client.submit(self.frames, self.reference, settings=self.settings, priority=60)
        self.assertEqual(shot["frameCount"], 2)
        self.assertEqual(shot["priority"], 60)
        seen = []
        done = self.client.wait(shot["id"], timeout=60, poll=0.1, on_progress=seen.append)
        self.assertEqual(done["state"], "completed")
        self.assertTrue(seen, "on_progress was called")
        self.assertEqual(seen[-1]["state"], "completed")
        for view in seen:
            self.assertEqual(view["id"], shot["id"])
            self.assertNotIn("frames", view, "a poll reads counts and active frames, not every frame")
            self.assertEqual(sum(view["counts"].values()), 2)
            for f in view["active"]:
                self.assertIn(f["frame"], (1, 2))
        self.assertEqual([f["seed"] for f in self.client.frames(shot["id"])], [11, 12])
        first, cursor = self.client.frame_page(shot["id"], limit=1)
        self.assertEqual(([f["frame"] for f in first], cursor), ([1], "1"))
        rest, cursor = self.client.frame_page(shot["id"], ("completed", "failed"), cursor=cursor, limit=1)
        self.assertEqual(([f["frame"] for f in rest], cursor), ([2], None))
        self.assertTrue(rest[0]["outputUrl"], "a completed frame links to its output")
        self.assertEqual(list(self.client.frames(shot["id"], "failed")), [])

        with tempfile.TemporaryDirectory() as out:
            paths = self.client.download(shot["id"], out)
            self.assertEqual([os.path.basename(p) for p in paths], ["00001.png", "00002.png"])
            for p in paths:
                self.assertEqual(png_size(Path(p).read_bytes()), (SIZE, SIZE))

        self.assertIn(shot["id"], [s["id"] for s in self.client.list()])
        self.assertIn(shot["id"], [s["id"] for s in self.client.list(state="completed")])
        self.assertEqual(self.client.get(shot["id"])["state"], "completed")

    def test_named_shot_keeps_its_file_names(self) -> None:
        folder = self.dir / "sh010"
        folder.mkdir(exist_ok=True)
        frames = []
        for k in range(2):
            p = folder / f"sh010_{k + 1:04d}.png"
            write_png(p, SIZE, SIZE, sketch(k))
            frames.append(p)
        ids = {"show": "MOON", "sequence": "sq020", "shot": "sh010"}
        tag = f"rooftop {time.time_ns()}"
        shot = self.client.submit(frames, self.reference, settings=self.settings, name=f"sh010 {tag}", external_ids=ids)
        self.assertEqual(shot["name"], f"sh010 {tag}")
        self.assertEqual(shot["externalIds"], ids)
        self.assertEqual([s["id"] for s in self.client.iter_shots(q=tag.upper())], [shot["id"]], "found by its name")
        self.assertIn(shot["id"], [s["id"] for s in self.client.iter_shots(q="sq020")], "found by its sequence")
        self.client.wait(shot["id"], timeout=60, poll=0.1)
        with tempfile.TemporaryDirectory() as out:
            paths = self.client.download(shot["id"], out)
            self.assertEqual([os.path.basename(p) for p in paths], ["sh010_0001.png", "sh010_0002.png"])
        # Unnamed, the shot takes the name its frames share.
        self.assertEqual(self.client.submit(frames[:1], self.reference, settings=self.settings)["name"], "sh010")
        # A frame that is not an image is named by its field and its file.
        broken = folder / "sh010_0003.png"
        broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        with self.assertRaises(CelfarmError) as ctx:
            self.client.submit([frames[0], broken], self.reference, settings=self.settings)
        self.assertEqual((ctx.exception.status, ctx.exception.field), (400, "frames[1]"))
        self.assertIn("frames[1] (sh010_0003.png)", ctx.exception.message)

    def test_idempotency_key_returns_the_first_shot(self) -> None:
        key = f"py-test-{time.time_ns()}"
        a = self.client.submit(self.frames[:1], self.reference, settings=self.settings, idempotency_key=key)
        b = self.client.submit(self.frames[:1], self.reference, settings=self.settings, idempotency_key=key)
        self.assertEqual(a["id"], b["id"])
        c = self.client.submit(self.frames[:1], self.reference, settings=self.settings)
        self.assertNotEqual(a["id"], c["id"])
        self.client.wait(a["id"], timeout=60, poll=0.1)
        self.client.wait(c["id"], timeout=60, poll=0.1)

    def test_bad_setting_names_the_field(self) -> None:
        with self.assertRaises(CelfarmError) as ctx:
            self.client.submit(self.frames, self.reference, settings={"steps": 0})
        e = ctx.exception
        self.assertEqual(e.status, 400)
        self.assertEqual(e.code, "INVALID_KNOB")
        self.assertEqual(e.field, "settings.steps")
        self.assertIn("settings.steps", str(e))

    def test_corrupt_frame_names_the_part(self) -> None:
        with self.assertRaises(CelfarmError) as ctx:
            self.client.submit([self.frames[0], b"\x89PNG\r\n\x1a\nnot really"], self.reference, settings=self.settings)
        self.assertEqual(ctx.exception.status, 400)
        self.assertEqual(ctx.exception.field, "frames[1]")

    def test_unknown_shot_is_404(self) -> None:
        with self.assertRaises(CelfarmError) as ctx:
            self.client.get("no-such-shot")
        self.assertEqual((ctx.exception.status, ctx.exception.code), (404, "NOT_FOUND"))

    def test_cancelled_shot_raises_shot_failed(self) -> None:
        # Four 512² frames of 100 steps: far longer than the cancel takes to arrive.
        # As bytes, the four are named 00001.png … 00004.png (one file twice in a shot would name two outputs alike).
        frames = [p.read_bytes() for p in self.frames * 2]
        shot = self.client.submit(frames, self.reference, settings={**self.settings, "steps": 100, "width": 512, "height": 512})
        cancelled = self.client.cancel(shot["id"])
        self.assertEqual(cancelled["state"], "cancelled")
        with self.assertRaises(ShotFailed) as ctx:
            self.client.wait(shot["id"], timeout=30, poll=0.1)
        self.assertEqual(ctx.exception.state, "cancelled")
        self.assertEqual(ctx.exception.shot["id"], shot["id"])


    def test_review_approve_and_rerender(self) -> None:
        # The analytic pack inks whole latent cells: by the default thresholds every frame is flagged for lineFidelity.
        shot = self.client.submit(self.frames, self.reference, settings=self.settings)
        done = self.client.wait(shot["id"], timeout=60, poll=0.1)
        self.assertEqual((done["flagged"], done["needsReview"], done["qaThresholds"]["lineFidelity"]), (2, 2, 0.8))
        frames = list(self.client.frames(shot["id"]))
        for f in frames:
            self.assertTrue(f["needsReview"])
            self.assertIn("lineFidelity", f["qa"]["flagged"])
            self.assertLess(f["qa"]["scores"]["lineFidelity"], f["qa"]["thresholds"]["lineFidelity"])
        self.assertIsNone(frames[0]["qa"]["scores"]["flickerMean"], "the first frame has no previous one")

        approved = self.client.approve(shot["id"], 2)
        self.assertEqual((approved["frame"], approved["needsReview"], approved["review"]["state"]), (2, False, "approved"))
        self.assertIn("lineFidelity", approved["qa"]["flagged"], "its flags stay")
        self.assertEqual(self.client.approve(shot["id"], 2)["review"], approved["review"], "idempotent")
        self.assertEqual([f["frame"] for f in self.client.frames(shot["id"], review="needed")], [1])
        self.assertEqual([f["frame"] for f in self.client.frames(shot["id"], review="approved")], [2])
        self.assertEqual([f["frame"] for f in self.client.frames(shot["id"], flagged=True)], [1, 2])
        self.assertEqual(list(self.client.frames(shot["id"], flagged=False)), [])
        self.assertEqual(self.client.get(shot["id"])["needsReview"], 1)
        with self.assertRaises(CelfarmError) as ctx:
            self.client.approve(shot["id"], 9)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (404, "NOT_FOUND"))

        # The farm's test passes its worker's pid: the worker is held (SIGSTOP) while a second
        # re-render is tried, so the first cannot have finished by then.
        worker_pid = int(os.environ.get("CELFARM_TEST_WORKER_PID", "0"))
        if worker_pid:
            os.kill(worker_pid, signal.SIGSTOP)
        try:
            view = self.client.rerender(shot["id"], 1, seed=77)
            self.assertEqual((view["state"], view["round"]), ("running", 1))
            with self.assertRaises(CelfarmError) as ctx:
                self.client.rerender(shot["id"], 2)
            self.assertEqual((ctx.exception.status, ctx.exception.code), (409, "STATE_CONFLICT"), "one re-render at a time")
        finally:
            if worker_pid:
                os.kill(worker_pid, signal.SIGCONT)
        self.client.wait(shot["id"], timeout=60, poll=0.1)
        f1 = self.client.frame(shot["id"], 1)
        self.assertEqual((f1["state"], f1["seed"]), ("completed", 77))
        self.assertEqual([(t["round"], t["seed"]) for t in f1["takes"]], [(0, 11)])
        self.assertEqual(f1["takes"][0]["qa"], frames[0]["qa"], "the take keeps its scores")
        self.assertTrue(f1["takes"][0]["outputUrl"], "the earlier take stays readable")
        self.assertTrue(f1["needsReview"], "the new take is judged again")
        self.assertEqual(self.client.frame(shot["id"], 2)["review"]["state"], "approved", "the approval of another frame stays")
        with self.assertRaises(CelfarmError) as ctx:
            self.client.rerender(shot["id"], 1, seed=-4)
        self.assertEqual((ctx.exception.status, ctx.exception.field), (400, "seed"))
        with self.assertRaises(CelfarmError) as ctx:
            self.client.frame(shot["id"], 3)
        self.assertEqual(ctx.exception.status, 404)

    def test_consistency(self) -> None:
        keep = {"sharedNoise": True, "paletteLock": "reference"}
        shot = self.client.submit(self.frames, self.reference, settings=self.settings, consistency=keep)
        self.assertEqual(shot["consistency"], {**keep, "referenceChain": "off"})
        self.client.wait(shot["id"], timeout=60, poll=0.1)
        self.assertEqual({f["seed"] for f in self.client.frames(shot["id"])}, {shot["seed"]}, "every frame from the shot seed")
        with self.assertRaises(CelfarmError) as ctx:
            self.client.submit(self.frames, self.reference, settings=self.settings, consistency={"paletteLock": "always"})
        self.assertEqual((ctx.exception.status, ctx.exception.field), (400, "consistency.paletteLock"))

    def test_qa_thresholds(self) -> None:
        defaults = {"palette": 6, "flickerMean": 2.5, "flickerShare": 0.05, "lineFidelity": 0.8}
        try:
            view = self.client.set_qa_thresholds(palette=40, flickerMean=100, lineFidelity=0.5)
            self.assertEqual(view["project"], {"palette": 40, "flickerMean": 100, "lineFidelity": 0.5})
            self.assertEqual(view["effective"], {**defaults, "palette": 40, "flickerMean": 100, "lineFidelity": 0.5})
            self.assertEqual(self.client.qa_thresholds(), view)
            with self.assertRaises(CelfarmError) as ctx:
                self.client.set_qa_thresholds(lineFidelity=2)
            self.assertEqual((ctx.exception.status, ctx.exception.field), (400, "lineFidelity"))
            self.assertEqual(self.client.qa_thresholds(), view, "a refused change changes nothing")
            # The submit's thresholds over the project's, over the defaults: nothing can be past these.
            own = {"palette": 100, "lineFidelity": 0, "flickerShare": 1}
            shot = self.client.submit(self.frames, self.reference, settings=self.settings, qa_thresholds=own)
            self.assertEqual(shot["qaThresholds"], {"palette": 100, "flickerMean": 100, "flickerShare": 1, "lineFidelity": 0})
            done = self.client.wait(shot["id"], timeout=60, poll=0.1)
            self.assertEqual((done["flagged"], done["needsReview"]), (0, 0))
            self.assertEqual([f["qa"]["flagged"] for f in self.client.frames(shot["id"])], [[], []])
            with self.assertRaises(CelfarmError) as ctx:
                self.client.submit(self.frames, self.reference, settings=self.settings, qa_thresholds={"palette": 400})
            self.assertEqual(ctx.exception.status, 400)
            self.assertIn("palette", ctx.exception.field or "")
        finally:
            cleared = self.client.set_qa_thresholds()
        self.assertEqual(cleared, {"project": {}, "effective": defaults})


    def test_keys(self) -> None:
        me = self.client.whoami()
        self.assertIn("admin", me["scopes"])
        key = self.client.create_key(f"py-{time.time_ns()}", ["read"])
        self.assertTrue(key["token"].startswith("cf_"))
        self.assertIn(key["id"], [k["id"] for k in self.client.list_keys()])
        reader = Client(FARM, key["token"])
        self.assertEqual(reader.whoami()["scopes"], ["read"])
        reader.list()
        with self.assertRaises(CelfarmError) as ctx:
            reader.submit(self.frames, self.reference, settings=self.settings)
        self.assertEqual((ctx.exception.status, ctx.exception.code), (403, "FORBIDDEN"))
        self.client.revoke_key(key["id"])
        with self.assertRaises(CelfarmError) as ctx:
            reader.list()
        self.assertEqual((ctx.exception.status, ctx.exception.code), (401, "UNAUTHENTICATED"))

    def test_webhook_deliveries_verify(self) -> None:
        # Real deliveries from the farm (a ping, then the shot's events) pass verify_webhook.
        received = []

        class Receiver(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            hook = self.client.create_webhook(url, ["shot.created", "shot.completed"], description="python client test")
            self.assertTrue(hook["secret"].startswith("whsec_"))
            try:
                attempt = self.client.ping_webhook(hook["id"])
                self.assertTrue(attempt["delivered"], attempt)
                shot = self.client.submit(self.frames[:1], self.reference, settings=self.settings)
                self.client.wait(shot["id"], timeout=60, poll=0.1)
                deadline = time.monotonic() + 20
                events = []
                while time.monotonic() < deadline:
                    events = [verify_webhook(hook["secret"], h, b) for h, b in list(received)]
                    if any(e.get("type") == "shot.completed" and e.get("shotId") == shot["id"] for e in events):
                        break
                    time.sleep(0.1)
                types = [e.get("type") for e in events if e.get("shotId") == shot["id"]]
                self.assertIn("shot.created", types)
                self.assertIn("shot.completed", types)
                headers, body = received[-1]
                with self.assertRaises(WebhookVerificationError):
                    verify_webhook(hook["secret"], headers, body + b" ")
                self.assertTrue(any(d.get("delivered") for d in self.client.deliveries(hook["id"])))
                self.assertIn(hook["id"], [w["id"] for w in self.client.list_webhooks()])
            finally:
                self.client.delete_webhook(hook["id"])
        finally:
            server.shutdown()
            server.server_close()


class StubHandler(BaseHTTPRequestHandler):
    """A fake API: answers from `server.script` (a list of (status, headers, body)), records requests."""

    def log_message(self, *_args) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        status, headers, payload = self.server.script.pop(0)  # type: ignore[attr-defined]
        data = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


class TransportTest(unittest.TestCase):
    def setUp(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
        self.server.seen = []  # type: ignore[attr-defined]
        self.server.script = []  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.client = Client(f"http://127.0.0.1:{self.server.server_address[1]}", "cf_test", timeout=5)
        self.slept = []
        self.client._sleep = self.slept.append  # no real waiting

    def tearDown(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def test_retries_429_and_503_after_retry_after(self) -> None:
        self.server.script[:] = [  # type: ignore[attr-defined]
            (429, {"Retry-After": "2"}, {"error": {"code": "RATE_LIMITED", "message": "slow down"}}),
            (503, {"Retry-After": "0"}, {"error": {"code": "UNAVAILABLE", "message": "redis down"}}),
            (200, {}, {"id": "s1", "state": "running"}),
        ]
        self.assertEqual(self.client.get("s1")["state"], "running")
        self.assertEqual(self.slept, [2.0, 0.0])
        seen = self.server.seen  # type: ignore[attr-defined]
        self.assertEqual(len(seen), 3)
        self.assertTrue(all(h.get("Authorization") == "Bearer cf_test" for _, _, h, _ in seen))

    def test_gives_up_after_max_retries(self) -> None:
        self.client.max_retries = 2
        self.server.script[:] = [(429, {}, {"error": {"code": "RATE_LIMITED", "message": "slow down"}})] * 3  # type: ignore[attr-defined]
        with self.assertRaises(CelfarmError) as ctx:
            self.client.get("s1")
        self.assertEqual((ctx.exception.status, ctx.exception.code), (429, "RATE_LIMITED"))
        self.assertEqual(self.slept, [0.5, 1.0])

    def test_error_body_becomes_celfarm_error(self) -> None:
        self.server.script[:] = [(401, {}, {"error": {"code": "UNAUTHENTICATED", "message": "no key"}})]  # type: ignore[attr-defined]
        with self.assertRaises(CelfarmError) as ctx:
            self.client.list()
        self.assertEqual((ctx.exception.status, ctx.exception.code, ctx.exception.field), (401, "UNAUTHENTICATED", None))

    def test_submit_issues_the_settings_warnings(self) -> None:
        warning = {"code": "SIZE_FITTED", "field": "settings.width", "message": "width 100 is not a multiple of 64; rendering 128"}
        self.server.script[:] = [(201, {}, {"id": "s3", "state": "queued", "warnings": [warning]})]  # type: ignore[attr-defined]
        with self.assertWarns(SettingsWarning) as ctx:
            view = self.client.submit([b"one"], b"ref", settings={"width": 100, "height": 128})
        self.assertEqual((ctx.warning.code, ctx.warning.field), ("SIZE_FITTED", "settings.width"))  # type: ignore[attr-defined]
        self.assertEqual(str(ctx.warning), "settings.width: width 100 is not a multiple of 64; rendering 128")
        self.assertEqual(view["warnings"], [warning], "kept in the view too")

    def test_multipart_submit(self) -> None:
        self.server.script[:] = [(201, {}, {"id": "s2", "state": "queued"})]  # type: ignore[attr-defined]
        self.client.submit([b"one", b"two"], b"ref", settings={"steps": 3}, priority=7, idempotency_key="k1", project="studio")
        method, path, headers, body = self.server.seen[0]  # type: ignore[attr-defined]
        self.assertEqual((method, path), ("POST", "/v1/shots"))
        self.assertEqual(headers["Idempotency-Key"], "k1")
        ctype = headers["Content-Type"]
        self.assertTrue(ctype.startswith("multipart/form-data; boundary=celfarm-"))
        boundary = ctype.split("boundary=")[1].encode()
        parts = body.split(b"--" + boundary)
        self.assertEqual(parts[-1], b"--\r\n")
        names = [p.split(b'name="')[1].split(b'"')[0] for p in parts[1:-1]]
        self.assertEqual(names, [b"request", b"reference", b"frames", b"frames"])
        request = json.loads(parts[1].split(b"\r\n\r\n", 1)[1][:-2])
        self.assertEqual(request, {"settings": {"steps": 3}, "priority": 7, "project": "studio"})
        self.assertEqual(parts[3].split(b"\r\n\r\n", 1)[1], b"one\r\n")

    def test_submit_sends_name_external_ids_and_file_names(self) -> None:
        self.server.script[:] = [(201, {}, {"id": "s3", "state": "queued"})]  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory() as d:
            frame = Path(d) / "sh010 take 2_0001.png"
            frame.write_bytes(b"one")
            self.client.submit([frame, b"two"], b"ref", name="sh010", external_ids={"show": "MOON", "shot": "sh010"})
        body = self.server.seen[0][3]  # type: ignore[attr-defined]
        request = json.loads(body.split(b"\r\n\r\n", 2)[1].split(b"\r\n")[0])
        self.assertEqual((request["name"], request["externalIds"]), ("sh010", {"show": "MOON", "shot": "sh010"}))
        self.assertIn(b'name="frames"; filename="sh010 take 2_0001.png"', body, "the file name as it is")
        self.assertIn(b'name="frames"; filename="00002.png"', body, "bytes are numbered")


    def test_review_and_qa_threshold_requests(self) -> None:
        effective = {"palette": 8, "flickerMean": 2.5, "flickerShare": 0.05, "lineFidelity": 0.8}
        self.server.script[:] = [  # type: ignore[attr-defined]
            (200, {}, {"frames": [{"frame": 3, "needsReview": True, "qa": {"scores": {"lineFidelity": 0.1}, "thresholds": {}, "flagged": ["lineFidelity"]}}], "next": "3"}),
            (200, {}, {"frame": 3, "needsReview": False, "review": {"state": "approved", "at": "2026-01-01T00:00:00Z"}}),
            (200, {}, {"id": "s1", "state": "running", "round": 1}),
            (200, {}, {"id": "s1", "state": "running", "round": 2}),
            (200, {}, {"project": {"palette": 8}, "effective": effective}),
            (200, {}, {"project": {}, "effective": effective}),
            (201, {}, {"id": "s2", "state": "queued"}),
        ]
        frames, cursor = self.client.frame_page("s1", flagged=True, review="needed", limit=1)
        self.assertEqual((frames[0]["qa"]["flagged"], cursor), (["lineFidelity"], "3"))
        self.assertFalse(self.client.approve("s1", 3)["needsReview"])
        self.assertEqual(self.client.rerender("s1", 3, seed=77)["round"], 1)
        self.assertEqual(self.client.rerender("s1", 3)["round"], 2)
        self.assertEqual(self.client.set_qa_thresholds(palette=8)["project"], {"palette": 8})
        self.assertEqual(self.client.set_qa_thresholds()["project"], {})
        self.client.submit([b"one"], b"ref", qa_thresholds={"palette": 8, "lineFidelity": 0.5})
        seen = self.server.seen  # type: ignore[attr-defined]
        self.assertEqual(
            [(m, p) for m, p, _, _ in seen[:6]],
            [
                ("GET", "/v1/shots/s1/frames?flagged=true&review=needed&limit=1"),
                ("POST", "/v1/shots/s1/frames/3/approve"),
                ("POST", "/v1/shots/s1/frames/3/rerender"),
                ("POST", "/v1/shots/s1/frames/3/rerender"),
                ("PUT", "/v1/qa/thresholds"),
                ("PUT", "/v1/qa/thresholds"),
            ],
        )
        self.assertEqual(seen[1][3], b"", "approve sends no body")
        self.assertEqual([json.loads(b) for _, _, _, b in seen[2:6]], [{"seed": 77}, {}, {"palette": 8}, {}], "no seed: a random one; no thresholds: cleared")
        request = json.loads(seen[6][3].split(b"\r\n\r\n", 2)[1].split(b"\r\n")[0])
        self.assertEqual(request["qa"], {"thresholds": {"palette": 8, "lineFidelity": 0.5}})


SECRET = "whsec_" + base64.b64encode(b"celfarm-test-secret-key-0123456789").decode()
BODY = json.dumps({"id": "evt_1", "type": "shot.completed", "createdAt": "2026-01-01T00:00:00Z", "project": "demo", "shotId": "s1", "data": {}}).encode()


class WebhookTest(unittest.TestCase):
    def headers(self, body: bytes = BODY, ts=None, secret: str = SECRET, msg_id: str = "evt_1"):
        ts = int(time.time()) if ts is None else ts
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sign_webhook(secret, msg_id, ts, body)}

    def test_accepts_its_own_signature(self) -> None:
        event = verify_webhook(SECRET, self.headers(), BODY)
        self.assertEqual(event["type"], "shot.completed")
        self.assertEqual(verify_webhook(SECRET, self.headers(), BODY.decode())["shotId"], "s1")

    def test_accepts_a_hand_computed_hmac(self) -> None:
        ts = int(time.time())
        key = base64.b64decode(SECRET[len("whsec_"):])
        mac = hmac.new(key, f"evt_1.{ts}.".encode() + BODY, hashlib.sha256).digest()
        headers = {"Webhook-Id": "evt_1", "Webhook-Timestamp": str(ts), "Webhook-Signature": "v1," + base64.b64encode(mac).decode()}
        self.assertEqual(verify_webhook(SECRET, headers, BODY)["id"], "evt_1")

    def test_standard_webhooks_test_vector(self) -> None:
        sig = sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
        self.assertEqual(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

    def test_accepts_any_of_several_signatures(self) -> None:
        h = self.headers()
        other = sign_webhook("whsec_" + base64.b64encode(b"rotated-old-secret").decode(), "evt_1", h["webhook-timestamp"], BODY)
        h["webhook-signature"] = f"v1a,abc {other} {h['webhook-signature']}"
        self.assertEqual(verify_webhook(SECRET, h, BODY)["id"], "evt_1")

    def test_rejects_a_tampered_body(self) -> None:
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(SECRET, self.headers(), BODY.replace(b"completed", b"failed"))

    def test_rejects_a_wrong_secret(self) -> None:
        wrong = "whsec_" + base64.b64encode(b"some-other-secret").decode()
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(wrong, self.headers(), BODY)

    def test_rejects_old_and_future_timestamps(self) -> None:
        old = int(time.time()) - 301
        with self.assertRaisesRegex(WebhookVerificationError, "too old"):
            verify_webhook(SECRET, self.headers(ts=old), BODY)
        with self.assertRaisesRegex(WebhookVerificationError, "too new"):
            verify_webhook(SECRET, self.headers(ts=int(time.time()) + 600), BODY)
        self.assertEqual(verify_webhook(SECRET, self.headers(ts=old), BODY, tolerance=600)["id"], "evt_1")

    def test_rejects_a_replayed_signature_under_another_id(self) -> None:
        h = self.headers()
        h["webhook-id"] = "evt_2"
        with self.assertRaises(WebhookVerificationError):
            verify_webhook(SECRET, h, BODY)

    def test_rejects_missing_headers(self) -> None:
        h = self.headers()
        del h["webhook-signature"]
        with self.assertRaisesRegex(WebhookVerificationError, "missing"):
            verify_webhook(SECRET, h, BODY)


if __name__ == "__main__":
    unittest.main()
