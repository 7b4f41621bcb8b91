"""Demo-server cases: a real server (``edgefm.pipeline.demo.serve_demo`` on 127.0.0.1, port 0, in
a thread) on a demo-shaped folder holding hostile entries (a symlink to a secret outside, a link
to a directory outside, dotfiles, a link onto a dotfile), asked raw HTTP requests: traversal
(plain, percent-encoded, double-encoded, backslashes, absolute-form), ``%00``, bad escapes and
invalid UTF-8, an over-long path, directory listings, other methods, garbage request lines.

Rules: only regular files that resolve inside the folder are served; no dotfiles, no listings;
a malformed request gets a 4xx, never a traceback (nothing printed with "Traceback"); nothing in
the folder is created or changed; the server binds 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import time

from tests.robustness.harness import Case, Result

CASES: list[Case] = []
OWNER = "B"
SECRET = b"SECRET-OUTSIDE-THE-DEMO-FOLDER"
HIDDEN = b"SECRET-DOTFILE"


def make_site(sb):
    sb.write("outside/passwd", SECRET + b"\n")
    sb.write("outside/other.txt", SECRET + b" 2\n")
    d = sb.p("site")
    sb.write("site/app.json", '{"model": "model/m.onnx"}')
    sb.write("site/index.html", "<html>edgefm demo INDEX</html>")
    sb.write("site/ort/ort.wasm.min.mjs", "export default 1;")
    sb.write("site/model/m.onnx", b"onnx-bytes")
    sb.write("site/model/manifest.json", "{}")
    sb.write("site/.hidden", HIDDEN)
    sb.write("site/.git/config", HIDDEN + b" git")
    sb.write("site/.site-tls/key.pem", HIDDEN + b" key")
    (d / "passwd").symlink_to(sb.p("outside/passwd"))
    (d / "outdir").symlink_to(sb.p("outside"), target_is_directory=True)
    (d / "peek").symlink_to(d / ".hidden")
    (d / "alias.json").symlink_to(d / "app.json")
    for f in ("outside/passwd", "outside/other.txt", "site/app.json", "site/index.html", "site/.hidden",
              "site/model/m.onnx"):
        sb.precious.append(sb.p(f))
    return d


def _start(srv):
    """Serve in a thread that notices shutdown quickly (the default polls every 0.5 s)."""
    import threading
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return srv


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def _status(resp: bytes) -> int | None:
    line = resp.split(b"\r\n", 1)[0].split()
    try:
        return int(line[1])
    except (IndexError, ValueError):
        return None


def request_case(name, request: bytes, *, allowed=(400, 403, 404, 405, 414, 501), forbidden=(SECRET, HIDDEN),
                 expect_status=None, after=None, no_listing=False):
    """A case that sends ``request`` and checks the reply: its status in ``allowed`` (or exactly
    ``expect_status``), no forbidden bytes in it, no traceback printed, and ``after(sb)`` holds."""
    def setup(sb):
        site = make_site(sb)

        def call() -> Result:
            from edgefm.pipeline.demo import serve_demo
            captured = io.StringIO()
            old = sys.stderr
            sys.stderr = captured
            srv = None
            try:
                srv = _start(serve_demo(site, port=0))
                resp = _raw(srv.server_address[1], request)
                time.sleep(0.05)
            finally:
                if srv is not None:
                    srv.shutdown()
                    srv.server_close()
                sys.stderr = old
            err = captured.getvalue()
            st = _status(resp)
            if "Traceback" in err:
                return Result(1, resp.decode("latin-1")[:300], err, problem=("traceback", err.strip()[-300:]))
            leaked = [f.decode() for f in forbidden if f in resp]
            if leaked:
                return Result(0, "", err, problem=("silently_accepted", f"served {leaked[0]} (status {st})"))
            if no_listing and st == 200:
                return Result(0, "", err, problem=("silently_accepted", "served a directory listing"))
            if expect_status is not None and st != expect_status:
                return Result(1, "", err, problem=("refused_valid" if expect_status == 200 else "untyped_error",
                                                   f"status {st}, expected {expect_status}"))
            if expect_status is None and st not in allowed:
                k = "traceback" if (st is None or st >= 500) and st != 501 else "silently_accepted"
                return Result(1, "", err, problem=(k, f"status {st} ({resp[:80]!r})"))
            if after is not None:
                why = after(sb)
                if why:
                    return Result(0, "", err, problem=("outside_write", why))
            return Result(0, resp.decode("latin-1")[:200], err)
        return call
    CASES.append(Case(f"demo_server/{name}", "demo_server", setup, "ok", owner=OWNER, timeout=20))


def get(path: str, method: str = "GET", version: str = "HTTP/1.1", extra: bytes = b"") -> bytes:
    return (f"{method} ".encode() + path.encode("latin-1", "surrogateescape") + f" {version}\r\n".encode()
            + b"Host: 127.0.0.1\r\nConnection: close\r\n" + extra + b"\r\n")


request_case("control-index", get("/"), expect_status=200)
request_case("control-app-json", get("/app.json"), expect_status=200)
request_case("control-nested-file", get("/model/m.onnx"), expect_status=200)
request_case("symlink-out-of-folder", get("/passwd"))
request_case("symlink-dir-out-of-folder", get("/outdir/passwd"))
request_case("symlink-dir-listing-outside", get("/outdir/"), no_listing=True)
request_case("symlink-onto-dotfile", get("/peek"))
request_case("dotfile", get("/.hidden"))
request_case("dot-directory-file", get("/.git/config"))
request_case("tls-key-in-dot-folder", get("/.site-tls/key.pem"))
request_case("dotfile-head", get("/.hidden", method="HEAD"))
request_case("dotfile-encoded", get("/%2ehidden"))
request_case("directory-listing-root-dir", get("/model/"), no_listing=True, forbidden=(SECRET, HIDDEN, b"m.onnx<"))
request_case("directory-listing-no-slash", get("/ort"), allowed=(301, 400, 403, 404), no_listing=True,
             forbidden=(SECRET, HIDDEN, b"ort.wasm"))
request_case("traversal-plain", get("/../outside/passwd"))
request_case("traversal-deep", get("/../../../../../../etc/passwd"), forbidden=(SECRET, HIDDEN, b"root:"))
request_case("traversal-encoded", get("/%2e%2e/outside/passwd"))
request_case("traversal-encoded-slash", get("/..%2foutside%2fpasswd"))
request_case("traversal-double-encoded", get("/%252e%252e/outside/passwd"))
request_case("traversal-backslash", get("/..\\outside\\passwd"))
request_case("traversal-mixed", get("/model/../../outside/passwd"))
request_case("traversal-absolute-form", get("http://127.0.0.1/../outside/passwd"))
request_case("traversal-no-leading-slash", get("../outside/passwd"))
request_case("double-slash-absolute", get("//etc/passwd"), forbidden=(SECRET, HIDDEN, b"root:"))
request_case("nul-escape", get("/app.json%00"))
request_case("nul-escape-middle", get("/a%00b/../app.json"))
request_case("bad-escape-zz", get("/%zz"))
request_case("bad-escape-trailing", get("/app.json%"))
request_case("bad-escape-short", get("/%4"))
request_case("invalid-utf8", get("/%c3%28"))
request_case("truncated-utf8", get("/%e2%82"))
request_case("raw-non-ascii", get("/\xffstrange"))
request_case("control-character", get("/app%0a.json"))
request_case("long-path-10k", get("/" + "a" * 10000))
request_case("long-path-100k", get("/" + "b/" * 50000))
request_case("post", get("/", method="POST", extra=b"Content-Length: 5\r\n") + b"hello")
request_case("put-creates-nothing", get("/new.txt", method="PUT", extra=b"Content-Length: 5\r\n") + b"hello",
             after=lambda sb: "PUT created a file" if sb.p("site/new.txt").exists() else None)
request_case("delete-removes-nothing", get("/app.json", method="DELETE"),
             after=lambda sb: None if sb.p("site/app.json").is_file() else "DELETE removed a file")
request_case("unknown-method", get("/", method="BREW"))
request_case("garbage-request-line", b"GARBAGE\r\n\r\n", allowed=(400, 405, 501, None))
request_case("empty-connection", b"", allowed=(None,))
request_case("http09-request", b"GET /passwd\r\n", allowed=(400, 404, None))
request_case("header-flood", get("/", extra=b"".join(b"X-%d: y\r\n" % i for i in range(200))),
             allowed=(200, 400, 431))


def _bind_case(sb):
    site = make_site(sb)

    def call() -> Result:
        from edgefm.pipeline.demo import serve_demo
        srv = _start(serve_demo(site, port=0))
        try:
            host = srv.server_address[0]
        finally:
            srv.shutdown()
            srv.server_close()
        if host != "127.0.0.1":
            return Result(0, "", "", problem=("silently_accepted", f"bound {host} by default"))
        return Result(0, "", "")
    return call


CASES.append(Case("demo_server/binds-loopback-by-default", "demo_server", _bind_case, "ok", owner=OWNER))


def _not_a_demo(sb):
    sb.keep("plain/file.txt")
    return ["demo", "serve", "plain", "--port", "0"]


CASES.append(Case("demo_server/serve-non-demo-folder", "demo_server", _not_a_demo, "error", owner=OWNER))
CASES.append(Case("demo_server/serve-missing-folder", "demo_server", lambda sb: ["demo", "serve", "nope", "--port", "0"],
                  "error", match="nope", owner=OWNER))
