"""Build and serve the on-phone demo web app (``demo/web``) for an exported student.

``build_demo(source, out)`` assembles a self-contained static folder: the app (HTML/JS/CSS,
web manifest, icons, service worker), ONNX Runtime Web's wasm runtime copied from
``demo/node_modules/onnxruntime-web`` (installed with ``npm ci`` in ``demo/``; nothing is
fetched from outside at run time), the student ``.onnx`` with its manifest, the gate config,
a device profile summary for the battery projection, and a replay trace (JSON, ACC in g).
``precache.json`` lists every file with a content version so the service worker caches all
of it and the app works offline after the first load.

``serve_demo(folder, host="127.0.0.1", port=8000, https=False)`` serves it; ``https=True``
makes a self-signed certificate with the ``openssl`` CLI (DeviceMotion needs a secure
context on a phone). The server answers GET and HEAD for regular files that resolve inside the
folder and nothing else: no symlinks out of it, no dotfiles, no directory listings (``/`` is the
app's ``index.html``); a malformed request gets 400, another method 405.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from edgefm.errors import ConfigError, DataError, ManifestError
from edgefm.manifest import (atomic_dir, atomic_write_json, check_output, dumps, is_temporary,
                             read_artifact_manifest, read_json)

REPO = Path(__file__).resolve().parents[2]
DEMO_SRC = REPO / "demo" / "web"
ORT_DIST = REPO / "demo" / "node_modules" / "onnxruntime-web" / "dist"
# the wasm backend's ES module, its loader and the SIMD binary (single-threaded is enough)
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
GATE_FIELDS = ("on_threshold", "off_threshold", "min_on_s", "off_hold_s", "wake_every_s", "block_s", "fs_hz")  # runtime.gate.GateConfig.to_dict()
DEVICE_FIELDS = ("name", "battery_j", "floor_w", "gate_j_per_sample", "inference_j", "ppg_w")
MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
        ".webmanifest": "application/manifest+json", ".json": "application/json",
        ".onnx": "application/octet-stream"}


def _recorded_onnx(run: Path) -> Path | None:
    """The ONNX artifact the run's export stage recorded in its ``stage.json`` (int8 first)."""
    from edgefm.pipeline.core import read_stage
    rec = read_stage(run, "export")
    if rec is None:
        return None
    arts = [a for a in rec.summary.get("artifacts", []) if isinstance(a, dict) and a.get("format") == "onnx"]
    for a in sorted(arts, key=lambda a: not a.get("int8")):
        name = str(a.get("artifact", ""))
        p = rec.dir / name
        if name and Path(name).name == name and not name.startswith(".") and p.is_file():
            return p
    return None


def _find_onnx(run: Path) -> Path:
    """The student ONNX in a run directory: the export stage's recorded artifact (int8 first);
    else any ``.onnx`` under ``export/``, then anywhere in the run (int8 QDQ first, then fp32).
    A file inside a writer's temporary folder (a killed stage's debris) is never chosen."""
    rec = _recorded_onnx(run)
    if rec is not None:
        return rec

    def found(pattern: str) -> list[Path]:
        return [p for p in sorted(run.glob(pattern)) if p.is_file() and not is_temporary(p.relative_to(run))]

    cands = found("export/**/*.onnx") or found("**/*.onnx")
    if not cands:
        raise ManifestError("no exported .onnx student in this run", path=run,
                            hint="run `edgefm pipeline run` (export stage) first, or pass the .onnx file")
    for key in ("qdq", "int8", "fp32"):
        for c in cands:
            if key in c.name:
                return c
    return cands[0]


def check_demo_out(source: Path, out: Path, *, overwrite: bool = False, inputs: tuple = ()) -> None:
    """Refuse a demo ``out`` that would destroy its input.

    ``out`` may not be ``source`` or contain it (or any of ``inputs``, the gate/device/trace
    files). It may lie inside a pipeline run directory only as a new folder of its own (``RUN/demo``,
    as ``make run`` does), never on one of the run's stage folders. An existing non-empty ``out``
    needs ``overwrite``.

    Raises:
        ConfigError: naming ``out`` and ``--out``.
    """
    from edgefm.pipeline import RUN_FILE, STAGES, is_run_dir
    ro, rs = Path(os.path.realpath(out)), Path(os.path.realpath(source))
    if ro == rs or rs.is_relative_to(ro):
        raise ConfigError(f"the output would replace the input {source}", path=out, field="--out",
                          hint="choose an --out outside the input")
    if ro.is_relative_to(rs):
        top = ro.relative_to(rs).parts[0]
        if not is_run_dir(source) or top in STAGES or top == RUN_FILE or top.startswith("."):
            raise ConfigError(f"the output would lie inside the input {source}", path=out, field="--out",
                              hint="choose an --out outside the input, or a new folder in a run such as RUN/demo")
    check_output(out, overwrite=overwrite, sources=tuple(p for p in inputs if isinstance(p, (str, Path))),
                 option="--out")


def _load_obj(x, what: str) -> dict:
    if x is None:
        raise ConfigError(f"no {what} given and none found in the run", field=what)
    if isinstance(x, dict):
        return x
    return read_json(x)


def trace_to_json(acc_g: np.ndarray, fs_hz: float, labels: dict | None = None) -> dict:
    """A replay trace: ``acc_g: (3, n)`` ACC in g at ``fs_hz`` -> the demo's JSON trace dict."""
    acc_g = np.asarray(acc_g, dtype=np.float64)
    if acc_g.ndim != 2 or acc_g.shape[0] != 3:
        raise DataError(f"trace must be (3, n) acc_x/y/z, got shape {acc_g.shape}", field="acc")
    if not np.all(np.isfinite(acc_g)):
        raise DataError("trace holds NaN or inf; replay needs a fully observed stretch", field="acc")
    return {"fs_hz": float(fs_hz), "unit": "g", "channels": ["acc_x", "acc_y", "acc_z"],
            "data": [np.round(r, 6).tolist() for r in acc_g],
            **({"labels": labels} if labels else {})}


def _icons(out: Path) -> None:
    from PIL import Image, ImageDraw
    for size in (192, 512):
        im = Image.new("RGB", (size, size), (11, 93, 75))
        d = ImageDraw.Draw(im)
        w = size // 12
        pts = [(0.08, .55), (.32, .55), (.40, .30), (.50, .78), (.58, .45), (.64, .55), (.92, .55)]
        d.line([(x * size, y * size) for x, y in pts], fill=(255, 255, 255), width=w, joint="curve")
        im.save(out / f"icon-{size}.png", optimize=False)


def build_demo(source: str | Path, out: str | Path, *, gate: dict | str | Path | None = None,
               device: dict | str | Path | None = None, trace: dict | str | Path | None = None,
               overwrite: bool = False) -> Path:
    """Assemble the demo app for a run directory (or a student ``.onnx``) into ``out``.

    Args:
        source: a pipeline run directory (uses ``export/*.onnx``, ``gate/gate.json``,
            ``simulate/demo_device.json``, ``simulate/demo_trace.json`` unless given) or an ``.onnx``.
        gate: the gate config (``runtime.gate.GateConfig.to_dict()``) or its JSON file;
            defaults to the model manifest's ``gate`` field, then the run's ``gate/gate.json``.
        device: the device summary for the battery projection (``name``, ``battery_j``,
            ``floor_w``, ``gate_j_per_sample``, ``inference_j``, ``ppg_w``) or its JSON file.
        trace: a replay trace (see :func:`trace_to_json`) or its JSON file.
        overwrite: replace an existing non-empty ``out`` (otherwise refused).
    Returns:
        ``out``, written atomically.
    Raises:
        ConfigError: ``out`` is or contains the source (or lies on one of its stage folders), or
            exists and is not empty without ``overwrite`` (see :func:`check_demo_out`).
    """
    source, out = Path(source), Path(out)
    check_demo_out(source, out, overwrite=overwrite, inputs=(gate, device, trace))
    if not ORT_DIST.is_dir():
        raise ConfigError("onnxruntime-web is not installed", path=ORT_DIST,
                          hint="run `npm ci` in demo/ (see README set-up)")
    if source.is_dir():
        run, model = source, _find_onnx(source)
    elif source.suffix == ".onnx":
        run, model = None, source
    else:
        raise ConfigError("expected a run directory or an .onnx file", path=source)
    manifest = read_artifact_manifest(model, verify=True)
    spec = manifest.get("input_spec") or {}
    for k in ("channels", "fs_hz", "window", "hop", "normalisation"):
        if k not in spec:
            raise ManifestError("model manifest lacks input_spec field", path=model, field=f"input_spec.{k}")
    if list(spec["channels"]) != ["acc_x", "acc_y", "acc_z"]:
        raise ManifestError(f"the demo needs an ACC-only model, this one takes {spec['channels']}",
                            path=model, field="input_spec.channels")

    def from_run(rel):
        p = run / rel if run else None
        return p if p is not None and p.exists() else None

    gate = _load_obj(gate or manifest.get("gate") or from_run("gate/gate.json"), "gate")
    gate = gate.get("config", gate)         # a calibration result carries {"config": {...}, ...}
    missing = [k for k in GATE_FIELDS if k not in gate]
    if missing:
        raise ConfigError(f"gate config lacks {missing}", field="gate")
    try:
        from runtime.gate import GateConfig
        gate = GateConfig.from_dict(gate).to_dict()          # validates exactly as the runtime does
    except ImportError:                                      # runtime not installed: shape check only
        pass
    if float(gate["fs_hz"]) != float(spec["fs_hz"]):
        raise ConfigError(f"gate runs at {gate['fs_hz']} Hz but the model at {spec['fs_hz']} Hz", field="gate.fs_hz")
    device = _load_obj(device or from_run("simulate/demo_device.json"), "device")
    missing = [k for k in DEVICE_FIELDS if k not in device]
    if missing:
        raise ConfigError(f"device summary lacks {missing}", field="device")
    trace = _load_obj(trace or from_run("simulate/demo_trace.json"), "trace")

    with atomic_dir(out, overwrite=overwrite) as tmp:
        for f in DEMO_SRC.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        (tmp / "ort").mkdir()
        for name in ORT_FILES:
            if not (ORT_DIST / name).exists():
                raise ConfigError("onnxruntime-web file missing", path=ORT_DIST / name,
                                  hint="reinstall with `npm ci` in demo/")
            shutil.copy2(ORT_DIST / name, tmp / "ort" / name)
        (tmp / "model").mkdir()
        shutil.copy2(model, tmp / "model" / model.name)
        atomic_write_json(tmp / "model" / "manifest.json", manifest)
        atomic_write_json(tmp / "gate.json", gate)
        atomic_write_json(tmp / "device.json", device)
        atomic_write_json(tmp / "trace.json", trace)
        atomic_write_json(tmp / "app.json", {"model": f"model/{model.name}", "model_manifest": "model/manifest.json",
                                             "gate": "gate.json", "device": "device.json", "trace": "trace.json"})
        _icons(tmp)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        h = hashlib.sha256()
        for f in files:
            h.update(f.encode()); h.update((tmp / f).read_bytes())
        atomic_write_json(tmp / "precache.json", {"version": h.hexdigest()[:16], "files": ["./", *files]})
    return out


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
MAX_PATH = 1024          # longer request paths are malformed (the app's longest is well under 100)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of one demo folder, GET and HEAD only.

    Serves a path only when every component is a plain name (no leading dot), its real path
    (symlinks resolved) lies inside the folder without a dot-named part, and it is a regular
    file; ``/`` is the folder's ``index.html``. Everything else: 404 (missing, hidden, outside, a
    directory), 400 (malformed: bad or NUL escapes, control characters, too long), 405 (other
    methods). Errors never print a traceback.
    """

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    timeout = 60                      # an idle connection does not hold a thread forever

    def log_message(self, *a):       # quiet; the CLI prints the address
        pass

    def _method_not_allowed(self):
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _method_not_allowed

    def translate_path(self, path: str) -> str:
        """The real file a request path names, or "" when there is none to serve."""
        r = self._resolve(path)
        return r if isinstance(r, str) else ""

    def _resolve(self, raw: str) -> str | int:
        """A request path -> the real path of a regular file inside the folder, or an HTTP status."""
        if len(raw) > MAX_PATH:
            return 400
        path = raw.split("?", 1)[0].split("#", 1)[0]
        if not path.startswith("/") or _BAD_ESCAPE.search(path):
            return 400
        try:
            decoded = urllib.parse.unquote(path, errors="strict")
        except UnicodeDecodeError:
            return 400
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded) or "\\" in decoded:
            return 400
        parts = [p for p in decoded.split("/") if p and p != "."]
        if any(p.startswith(".") for p in parts):
            return 404                                   # dotfiles, dot-directories, ".."
        root = os.path.realpath(self.directory)
        target = os.path.realpath(os.path.join(root, *parts))
        if not parts and os.path.isdir(target):
            target = os.path.realpath(os.path.join(root, "index.html"))
        if target == root or os.path.commonpath([root, target]) != root:
            return 404                                   # a symlink out of the folder
        if any(p.startswith(".") for p in Path(os.path.relpath(target, root)).parts):
            return 404                                   # a symlink onto a dotfile
        try:
            if not stat.S_ISREG(os.stat(target).st_mode):
                return 404                               # a directory: no listings
        except (OSError, ValueError):
            return 404
        return target

    def send_head(self):
        r = self._resolve(self.path)
        if isinstance(r, int):
            self.send_error(r, "Bad request" if r == 400 else "Not found")
            return None
        try:
            f = open(r, "rb")
        except OSError:
            self.send_error(404, "Not found")
            return None
        try:
            fs = os.fstat(f.fileno())
            if not stat.S_ISREG(fs.st_mode):
                f.close()
                self.send_error(404, "Not found")
                return None
            self.send_response(200)
            self.send_header("Content-type", self.guess_type(r))
            self.send_header("Content-Length", str(fs.st_size))
            self.send_header("Last-Modified", self.date_time_string(fs.st_mtime))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            return f
        except BaseException:
            f.close()
            raise

    def list_directory(self, path):   # never reached through send_head; refuse if called
        self.send_error(404, "Not found")
        return None


class _Server(http.server.ThreadingHTTPServer):
    """The demo's HTTP server: a failing request is one quiet line on stderr, never a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, TimeoutError, ssl.SSLError)):
            return                                       # the client went away or spoke no TLS
        print(f"edgefm demo: a request from {client_address[0]} failed ({type(e).__name__})", file=sys.stderr)


def self_signed_cert(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (and localhost) made with the openssl CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists():
        return cert, key
    if shutil.which("openssl") is None:
        raise ConfigError("--https needs the openssl command", hint="install openssl (apt-get install openssl)")
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1" + (f",IP:{host}" if host[0].isdigit() and host != "127.0.0.1"
                                                          else (f",DNS:{host}" if host not in ("localhost", "0.0.0.0") else ""))
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=edgefm demo", "-addext", san, "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ConfigError(f"openssl failed: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
    return cert, key


def serve_demo(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, https: bool = False,
               background: bool = False) -> http.server.ThreadingHTTPServer:
    """Serve a built demo folder. With ``background`` the server runs in a daemon thread.

    Returns the server (``server.server_address`` has the bound port; ``port=0`` picks one).
    """
    folder = Path(folder)
    if not (folder / "app.json").exists():
        raise ConfigError("not a built demo folder (no app.json)", path=folder,
                          hint="run `edgefm demo build RUN --out DIR` first")
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        srv = _Server((host, port), handler)
    except OSError as e:
        raise ConfigError(f"cannot bind {host}:{port} ({e.strerror})", hint="choose another --port") from e
    if https:
        cert, key = self_signed_cert(folder.parent / f".{folder.name}-tls", host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if background:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
