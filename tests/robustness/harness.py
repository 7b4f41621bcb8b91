"""The adversarial robustness harness: one :class:`Case` per hostile input, run in-process.

A case builds its inputs inside a fresh *sandbox* folder, names the command line (or a callable,
for the demo server) and says what must happen: ``"error"`` (exit 1 and one line
``error: <TypedError>: ...`` on stderr), ``"ok"`` (exit 0, plus the case's own ``check``) or
``"either"`` (one of the two; an ``ok`` must still pass ``check``). :func:`run_case` runs it
through ``typer.testing.CliRunner`` on ``edgefm.cli.main.app`` (no subprocess: torch is imported
once), with the sandbox as the working folder, a wall-clock limit and an address-space limit, and
classifies what happened:

=====================  ==================================================================
``ok``                 the expected outcome, and nothing else changed
``code_executed``      the marker file a malicious payload would create exists
``data_deleted``       a precious file is gone or its bytes changed
``traceback``          an uncaught exception (or "Traceback" printed)
``outside_write``      something changed in the sandbox outside the declared outputs
``leftover``           ``.tmp-``/``.old-`` debris, or a half-written output after an error
``silently_accepted``  an error was due but the command exited 0 (or ran past its time
                       limit: it accepted the absurd input and started working), or an
                       ``ok`` whose ``check`` found silently wrong numbers
``untyped_error``      exit 1 without the one-line typed error (or a click usage error
                       that is not about a value)
``refused_valid``      a valid input was refused with a typed error
``wrong_error``        a typed error, but not about what the case broke (``match``)
``timeout``            an ``ok`` case ran past its limit
``harness_error``      the case itself is broken (its setup raised)
=====================  ==================================================================

The sandbox is snapshotted before and after (type, size, mtime of every entry); only the
declared outputs may change, and only when the command succeeds.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

FAILURE_CLASSES = ("code_executed", "data_deleted", "traceback", "outside_write", "leftover",
                   "silently_accepted", "untyped_error", "refused_valid", "wrong_error", "timeout",
                   "harness_error")
MARKER = "PWNED-MARKER"
TYPED_LINE = re.compile(r"^error: ([A-Z][A-Za-z]*(?:Error|Exceeded)): \S")
DEBRIS = re.compile(r"\.(tmp|old)-")
DEFAULT_TIMEOUT_S = 25.0
ADDRESS_SPACE_HEADROOM = 6 << 30     # a case may map this much more than the harness already has


_DEPTH = 0


class CaseTimeout(BaseException):
    """Raised in the main thread when a case runs past its limit (BaseException: ``except
    Exception`` in the code under test cannot swallow it)."""


@dataclass
class Result:
    """What a command did: exit code, captured streams, the uncaught exception if any."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    exception: BaseException | None = None
    tb: str = ""
    problem: tuple[str, str] | None = None      # (class, detail) found by a callable case


@dataclass
class Outcome:
    """How one case ended: ``klass`` is ``ok`` or one of :data:`FAILURE_CLASSES`."""

    case_id: str
    klass: str
    detail: str = ""
    exit_code: int | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.case_id}: {self.klass} (exit {self.exit_code}) {self.detail}"


class Sandbox:
    """The folder a case lives in. ``setup`` writes its inputs here, registers ``precious`` files
    (must be byte-identical afterwards) and ``outputs`` (the only paths allowed to change, and
    only on success). ``marker`` is the file malicious payloads would create."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.marker = self.root / MARKER
        self.precious: list[Path] = []
        self.outputs: list[Path] = []
        self.cleanup: list[Callable[[], None]] = []

    def p(self, rel: str | Path) -> Path:
        return self.root / rel

    def write(self, rel: str | Path, content: str | bytes) -> Path:
        p = self.p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content)
        else:
            p.write_bytes(content)
        return p

    def keep(self, rel: str | Path, content: bytes = b"precious user data\n") -> Path:
        """A precious file: it must exist with these bytes after the case."""
        p = self.write(rel, content)
        self.precious.append(p)
        return p

    def keep_tree(self, rel: str | Path) -> None:
        """Every regular file under ``rel`` is precious."""
        for f in sorted(self.p(rel).rglob("*")):
            if f.is_file() and not f.is_symlink():
                self.precious.append(f)

    def copy(self, src: Path, rel: str | Path) -> Path:
        dst = self.p(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if Path(src).is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst)
        return dst

    def output(self, *rels: str | Path) -> None:
        for r in rels:
            self.outputs.append(self.p(r) if not Path(r).is_absolute() else Path(r))


@dataclass
class Case:
    """One adversarial input.

    Args:
        id: unique, ``klass/what``.
        klass: the area (importer, reader, cli_number, output, artifact, checkpoint,
            device_budget, demo_server, property, control).
        setup: ``setup(sandbox)`` -> argv for ``edgefm`` (list of str) or a callable returning
            a :class:`Result` (demo server, properties).
        expect: ``"error"``, ``"ok"`` or ``"either"``.
        check: for a successful run, ``check(sandbox, result)`` -> None, or what is wrong (a string:
            ``silently_accepted``; or ``(class, text)``).
        match: a regex the typed error line must match (what the case broke: a file or field).
        owner: who fixes a failure (A, B, C, D).
        timeout: wall-clock seconds.
        isolate: run the command in a forked child (hostile bytes fed to a native runtime can
            abort the process: that is a ``traceback`` outcome, not the end of the suite).
    """

    id: str
    klass: str
    setup: Callable[[Sandbox], list | Callable[[], Result]]
    expect: str = "error"
    check: Callable[[Sandbox, Result], str | None] | None = None
    match: str | None = None
    owner: str = "?"
    timeout: float = DEFAULT_TIMEOUT_S
    note: str = ""
    isolate: bool = False        # run in a forked child: a native crash is an outcome, not the end


# ------------------------------------------------------------------ running

def invoke(argv: list[str]) -> Result:
    """``edgefm ARGV`` in this process (click's CliRunner), streams captured."""
    from typer.testing import CliRunner
    from edgefm.cli.main import app
    runner = CliRunner()
    r = runner.invoke(app, [str(a) for a in argv], catch_exceptions=True)
    exc = r.exception if not isinstance(r.exception, SystemExit) else None
    tb = "".join(traceback.format_exception(*r.exc_info)) if exc is not None and r.exc_info else ""
    try:
        err = r.stderr
    except ValueError:       # older click: stderr mixed into output
        err = ""
    return Result(r.exit_code, r.stdout, err, exc, tb)


def _vm_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@contextlib.contextmanager
def limits(seconds: float):
    """Wall-clock limit (SIGALRM -> :class:`CaseTimeout`, main thread only) and an address-space
    limit, so that an absurd allocation fails as a MemoryError instead of exhausting the machine."""
    global _DEPTH
    if _DEPTH:                 # a case inside a case (a property's examples): the outer limits hold
        yield
        return
    _DEPTH += 1
    old_as = resource.getrlimit(resource.RLIMIT_AS)
    vm = _vm_bytes()
    main = signal.getsignal(signal.SIGALRM) is not None and _is_main_thread()
    if vm:
        cap = vm + ADDRESS_SPACE_HEADROOM
        hard = old_as[1]
        if hard == resource.RLIM_INFINITY or cap < hard:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard))

    def on_alarm(signum, frame):
        raise CaseTimeout(f"ran past {seconds:g} s")

    old_handler = None
    if main:
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler or signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_AS, old_as)
        _DEPTH -= 1


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def snapshot(root: Path) -> dict[str, tuple]:
    """{relative path: (kind, size, mtime_ns, link target)} of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if os.path.islink(p):
                out[rel] = ("link", 0, 0, os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", 0, 0, "")
            else:
                out[rel] = ("file", st.st_size, st.st_mtime_ns, "")
    return out


def _changed(before: dict, after: dict) -> list[str]:
    ch = [k for k in after if k not in before or before[k] != after[k]]
    ch += [k for k in before if k not in after]
    return sorted(set(ch))


def _under(rel: str, roots: list[str]) -> bool:
    return any(rel == r or rel.startswith(r + os.sep) for r in roots)


def _rel_outputs(sb: Sandbox) -> list[str]:
    out = []
    for p in sb.outputs:
        try:
            out.append(os.path.relpath(p, sb.root))
        except ValueError:
            pass
    return out


def run_case(case: Case, root: Path) -> Outcome:
    """Run ``case`` in the (new, empty) folder ``root`` and classify what happened."""
    t0 = time.perf_counter()
    sb = Sandbox(root)
    try:
        spec = case.setup(sb)
    except Exception as e:  # the case is broken, not the code under test
        return Outcome(case.id, "harness_error", f"setup raised {type(e).__name__}: {e}\n"
                       + traceback.format_exc(), None, time.perf_counter() - t0)
    precious = {p: p.read_bytes() for p in sb.precious}
    before = snapshot(sb.root)
    beside = set(os.listdir(sb.root.parent))     # a write that escapes the sandbox lands here
    cwd = os.getcwd()
    debug = os.environ.pop("EDGEFM_DEBUG", None)
    res: Result | None = None
    timed_out = ""
    try:
        os.chdir(sb.root)
        if case.isolate and _DEPTH == 0 and hasattr(os, "fork"):
            res, timed_out = _run_forked(spec, case.timeout)
        else:
            with limits(case.timeout):
                res = _execute(spec)
    except CaseTimeout as e:
        timed_out = str(e)
    finally:
        os.chdir(cwd)
        if debug is not None:
            os.environ["EDGEFM_DEBUG"] = debug
        for fn in sb.cleanup:
            with contextlib.suppress(Exception):
                fn()
    after = snapshot(sb.root)
    escaped = sorted(set(os.listdir(sb.root.parent)) - beside)
    for name in escaped:
        after[os.path.join(os.pardir, name)] = ("escaped", 0, 0, "")
    o = classify(case, sb, res, timed_out, precious, before, after)
    for name in escaped:                          # our own work area: clean it for the next case
        q = sb.root.parent / name
        shutil.rmtree(q, ignore_errors=True) if q.is_dir() and not q.is_symlink() else q.unlink(missing_ok=True)
    o.seconds = time.perf_counter() - t0
    return o


def _execute(spec) -> Result:
    try:
        return spec() if callable(spec) else invoke([str(a) for a in spec])
    except CaseTimeout:
        raise
    except Exception as e:   # a callable case raised
        return Result(1, "", "", e, traceback.format_exc())


class _Raised(Exception):
    """An exception from the forked child, rebuilt in the parent (type name and message)."""

    def __init__(self, name: str, text: str):
        super().__init__(f"{name}: {text}")
        self.name = name


def _run_forked(spec, timeout: float) -> tuple[Result | None, str]:
    """Run the case in a forked child, so that a native crash (abort, segfault) in a runtime fed
    hostile bytes is an outcome (``traceback``: the process died), not the end of the suite."""
    import pickle
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # child
        os.close(r)
        code = 0
        try:
            with limits(timeout):
                res = _execute(spec)
            exc = res.exception
            payload = {"exit_code": res.exit_code, "stdout": res.stdout, "stderr": res.stderr, "tb": res.tb,
                       "problem": res.problem,
                       "exception": None if exc is None else (type(exc).__name__, str(exc)[:2000])}
        except CaseTimeout as e:
            payload = {"timeout": str(e)}
        except BaseException as e:                 # defensive: anything else is a crash
            payload = {"exit_code": 1, "stdout": "", "stderr": "", "tb": traceback.format_exc(), "problem": None,
                       "exception": (type(e).__name__, str(e)[:2000])}
        try:
            with os.fdopen(w, "wb") as f:
                f.write(pickle.dumps(payload))
        except BaseException:
            code = 3
        os._exit(code)
    os.close(w)
    import select
    chunks = []
    deadline = time.monotonic() + timeout + 15       # the child's own alarm failed: a native hang
    hung = False
    with os.fdopen(r, "rb", buffering=0) as f:
        while True:
            left = deadline - time.monotonic()
            ready = select.select([f], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                hung = True
                os.kill(pid, signal.SIGKILL)
                break
            b = f.read(65536)
            if not b:
                break
            chunks.append(b)
    _, status = os.waitpid(pid, 0)
    if hung:
        return None, f"ran past {timeout:g} s (hung in native code; killed)"
    if os.WIFSIGNALED(status):
        return Result(1, "", "", problem=("traceback", f"the process died (signal {os.WTERMSIG(status)}): "
                                                       "a native crash")), ""
    if not chunks:
        return Result(1, "", "", problem=("traceback", f"the process exited {os.WEXITSTATUS(status)} "
                                                       "without a result")), ""
    payload = pickle.loads(b"".join(chunks))
    if "timeout" in payload:
        return None, payload["timeout"]
    exc = payload.pop("exception")
    res = Result(**payload)
    if exc is not None:
        res.exception = _Raised(*exc)
    return res, ""


def classify(case: Case, sb: Sandbox, res: Result | None, timed_out: str, precious: dict,
             before: dict, after: dict) -> Outcome:
    cid = case.id
    code = None if res is None else res.exit_code

    def out(k, d=""):
        return Outcome(cid, k, d, code)

    if sb.marker.exists() or any(Path(k).name == MARKER for k in after):
        return out("code_executed", "the malicious payload's marker file exists")
    for p, data in precious.items():
        if not p.is_file() or p.is_symlink():
            return out("data_deleted", f"{os.path.relpath(p, sb.root)} is gone")
        if p.read_bytes() != data:
            return out("data_deleted", f"{os.path.relpath(p, sb.root)} was changed")
    changed = _changed(before, after)
    debris = [k for k in after if DEBRIS.search(Path(k).name) and k not in before]
    if timed_out:
        if case.expect == "error":
            return out("silently_accepted", f"accepted the input and kept working: {timed_out}")
        return out("timeout", timed_out)
    assert res is not None
    text = (res.stdout or "") + (res.stderr or "")
    if res.problem and res.problem[0] == "traceback":
        return out("traceback", res.problem[1])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        last = (res.tb.strip().splitlines() or [repr(res.exception)])[-1]
        return out("traceback", f"{type(res.exception).__name__}: {last[:300]}")
    if "Traceback (most recent call last)" in text:
        return out("traceback", "a traceback was printed")
    outputs = _rel_outputs(sb)
    ok_exit = res.exit_code == 0 and res.problem is None
    if ok_exit:
        outside = [k for k in changed if not _under(k, outputs)]
    else:
        outside = [k for k in changed if not _under(k, outputs)]
    if outside:
        return out("outside_write", "changed outside the output: " + ", ".join(outside[:5]))
    if debris:
        return out("leftover", "debris: " + ", ".join(debris[:5]))
    if not ok_exit and changed:
        return out("leftover", "an output was written although the command failed: " + ", ".join(changed[:5]))
    if res.problem:
        return out(res.problem[0], res.problem[1])
    if ok_exit:
        if case.expect == "error":
            return out("silently_accepted", "exit 0: " + _tail(res.stdout))
        if case.check is not None:
            try:
                why = case.check(sb, res)
            except Exception as e:
                why = f"check raised {type(e).__name__}: {e}"
            if why:
                return out(*why) if isinstance(why, tuple) else out("silently_accepted", why)
        return out("ok")
    # a failure exit
    if res.exit_code == 2:
        err = res.stderr or res.stdout
        if "Invalid value" in err and case.expect in ("error", "either"):
            return out("ok", "click refused the value")
        return out("untyped_error" if case.expect != "ok" else "refused_valid",
                   "usage error: " + _tail(err))
    lines = [ln for ln in (res.stderr or "").splitlines() if ln.startswith("error:")]
    typed = [ln for ln in lines if TYPED_LINE.match(ln)]
    if res.exit_code != 1 or len(lines) != 1 or not typed:
        return out("untyped_error", f"exit {res.exit_code}; stderr: " + _tail(res.stderr or res.stdout))
    if case.expect == "ok":
        return out("refused_valid", typed[0][:300])
    if case.match and not re.search(case.match, typed[0], re.I):
        return out("wrong_error", f"expected /{case.match}/: {typed[0][:300]}")
    return out("ok", typed[0][:200])


def _tail(s: str, n: int = 300) -> str:
    s = (s or "").strip()
    return s[-n:].replace("\n", " | ")


# ------------------------------------------------------------------ helpers for cases

def expect_files(*rels: str) -> Callable[[Sandbox, Result], str | None]:
    """A check: these files exist after a successful run."""
    def check(sb: Sandbox, res: Result) -> str | None:
        missing = [r for r in rels if not sb.p(r).exists()]
        return f"missing after success: {missing}" if missing else None
    return check


def all_of(*checks) -> Callable[[Sandbox, Result], str | None]:
    def check(sb, res):
        for c in checks:
            if c is not None:
                why = c(sb, res)
                if why:
                    return why
        return None
    return check


def run_all(cases: list[Case], workdir: Path, progress: Callable[[Outcome], None] | None = None
            ) -> list[Outcome]:
    """Run every case in its own sandbox under ``workdir``."""
    outs = []
    for i, c in enumerate(cases):
        o = run_case(c, Path(workdir) / f"{i:04d}")
        outs.append(o)
        if progress:
            progress(o)
        shutil.rmtree(Path(workdir) / f"{i:04d}", ignore_errors=True)
    return outs
