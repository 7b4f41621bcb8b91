"""The demo server serves only regular files inside its folder: no symlinks out, no dotfiles, no
listings; malformed requests get 400/405 and never a traceback. A real server on 127.0.0.1:0."""

from __future__ import annotations

import http.client
import os
import socket

import pytest

from edgefm.pipeline.demo import serve_demo

SECRET = b"root:x:0:0:SECRET-OUTSIDE-THE-FOLDER"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A demo-shaped folder with hostile entries in it, and a secret outside it."""
    tmp_path = tmp_path_factory.mktemp("demo_server")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    d = tmp_path / "site"
    (d / "ort").mkdir(parents=True)
    (d / "model").mkdir()
    (d / "app.json").write_text('{"model": "model/m.onnx"}')
    (d / "index.html").write_text("<html>edgefm demo INDEX</html>")
    (d / "ort" / "ort.wasm.min.mjs").write_text("export default 1;")
    (d / "ort" / "x.wasm").write_bytes(b"\0asm\1\0\0\0")
    (d / "manifest.webmanifest").write_text("{}")
    (d / "model" / "m.onnx").write_bytes(b"onnx")
    (d / ".hidden").write_text("dotfile SECRET")
    (d / ".git").mkdir()
    (d / ".git" / "config").write_text("[core] SECRET")
    (d / "passwd").symlink_to(outside / "passwd")
    (d / "outdir").symlink_to(outside, target_is_directory=True)
    (d / "alias.json").symlink_to(d / "app.json")          # a link that stays inside is fine
    (d / "peek").symlink_to(d / ".hidden")                  # ... unless it lands on a dotfile
    return d


@pytest.fixture(scope="module")
def _server(site):
    srv = serve_demo(site, port=0, background=True)
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server(_server, capfd):
    """The running server; after each test, nothing it printed may be a traceback."""
    yield _server
    err = capfd.readouterr().err
    assert "Traceback" not in err, err


def _get(srv, path: str, method: str = "GET") -> tuple[int, bytes, dict]:
    c = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    try:
        c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def _raw(srv, request_line: bytes) -> bytes:
    """Send bytes http.client would refuse to send (NUL, bad escapes) and return the reply."""
    with socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=10) as s:
        s.sendall(request_line + b"\r\nHost: x\r\n\r\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def test_binds_localhost_by_default(server):
    assert server.server_address[0] == "127.0.0.1"


def test_serves_app_files_with_pwa_mime_types(server, site):
    for path, mime in (("/ort/ort.wasm.min.mjs", "text/javascript"), ("/ort/x.wasm", "application/wasm"),
                       ("/manifest.webmanifest", "application/manifest+json"), ("/app.json", "application/json"),
                       ("/model/m.onnx", "application/octet-stream")):
        st, body, h = _get(server, path)
        assert st == 200 and h["content-type"].startswith(mime), (path, st, h)
        assert body == (site / path.lstrip("/")).read_bytes()
    st, body, h = _get(server, "/app.json?v=3")
    assert st == 200 and body == (site / "app.json").read_bytes()
    st, body, _ = _get(server, "/alias.json")
    assert st == 200 and body == (site / "app.json").read_bytes()
    st, body, h = _get(server, "/app.json", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) == (site / "app.json").stat().st_size


@pytest.mark.parametrize("path", ["/passwd", "/outdir/passwd", "/outdir/", "/%2e%2e/outside/passwd",
                                  "/../outside/passwd", "/ort/../../outside/passwd", "/%2E%2E%2Foutside%2Fpasswd"])
def test_nothing_outside_the_folder(server, path):
    st, body, _ = _get(server, path)
    assert st in (400, 404), (path, st)
    assert SECRET not in body


@pytest.mark.parametrize("path", ["/.hidden", "/.git/config", "/.git/", "/ort/../.hidden", "/%2ehidden", "/peek"])
def test_no_dotfiles(server, path):
    st, body, _ = _get(server, path)
    assert st in (400, 404), (path, st)
    assert b"SECRET" not in body


@pytest.mark.parametrize("path", ["/ort/", "/ort", "/model/", "/outdir"])
def test_no_directory_listings(server, path):
    st, body, _ = _get(server, path)
    assert st == 404, (path, st)
    assert b"x.wasm" not in body and b"m.onnx" not in body and b"Directory listing" not in body


def test_root_is_the_index_page_only(server):
    for path in ("/", "/./", "/index.html"):           # the service worker precaches "./"
        st, body, h = _get(server, path)
        assert st == 200 and body == b"<html>edgefm demo INDEX</html>", path


@pytest.mark.parametrize("line", [b"GET /%00 HTTP/1.1", b"GET /app.json%00.png HTTP/1.1", b"GET /%zz HTTP/1.1",
                                  b"GET /%e9 HTTP/1.1", b"GET /a%0d%0aSet-Cookie:x HTTP/1.1",
                                  b"GET /" + b"a" * 5000 + b" HTTP/1.1", b"GET /" + b"a/" * 3000 + b" HTTP/1.1"])
def test_malformed_requests_get_400(server, line):
    reply = _raw(server, line)
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400"), reply[:80]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(server, method):
    st, body, h = _get(server, "/app.json", method=method)
    assert st == 405, (method, st)
    assert "GET" in h.get("allow", "")


def test_server_survives_bad_requests(server):
    for line in (b"GET /%00 HTTP/1.1", b"BREW /pot HTTP/1.1", b"\x16\x03\x01garbage"):
        _raw(server, line)
    st, _, _ = _get(server, "/app.json")
    assert st == 200
