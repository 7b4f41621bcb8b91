"""``profile(...)``: measure every variant, estimate the target, check a budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from edgefm.errors import BudgetExceeded, ConfigError, EdgefmError, IntegrityError, ManifestError, VerificationError
from edgefm.profile.budget import Budget, BudgetRow, check_budget, load_budget
from edgefm.profile.latency import Measurement, measure
from edgefm.profile.variants import Variant, discover, refused_variant, variant_for


def _row_text(r: BudgetRow) -> str:
    measured = "not measured" if r.measured is None else f"{r.measured:,.2f}"
    return f"{r.name} = {measured} ({'<=' if r.direction == 'max' else '>='} {r.limit:,.2f} {r.unit})"


@dataclass
class ProfileResult:
    rows: list[dict]
    ratios: dict[str, float]
    sim: dict | None
    sim_model: str | None
    budget: list[BudgetRow]
    budget_path: str | None
    seconds: float
    settings: dict = field(default_factory=dict)
    per_layer: dict[str, dict] = field(default_factory=dict)
    _sim_obj: object = None

    @property
    def problems(self) -> list[dict]:
        """Variants that were refused (integrity) or failed to run: ``{name, path, reason}``."""
        return [{"name": r["name"], "path": r["path"], "integrity": r.get("integrity", ""),
                 "reason": r["error"]} for r in self.rows if not r["ok"]]

    @property
    def unverified(self) -> list[str]:
        """Variants run without a manifest (accepted with ``unverified=True``)."""
        return [r["name"] for r in self.rows if r.get("integrity") == "unverified"]

    @property
    def passed(self) -> bool:
        """False when any variant was refused or failed, or any budget row failed."""
        return not self.problems and all(r.passed for r in self.budget)

    @property
    def failed_rows(self) -> list[BudgetRow]:
        return [r for r in self.budget if not r.passed]

    def verdict(self) -> str:
        """One line: why ``passed`` is false (empty when it is true)."""
        parts = [f"{p['name']} {p['reason']}" for p in self.problems]
        parts += [f"budget {_row_text(r)}" for r in self.failed_rows]
        return "; ".join(parts)

    def raise_for_problems(self) -> None:
        """Raise the typed error that says why the profile did not pass: a refused variant's own
        error class (IntegrityError, ManifestError), VerificationError for a variant that failed
        to run, BudgetExceeded for failed budget rows."""
        if self.passed:
            return
        refused = [r for r in self.rows if r.get("integrity") == "refused"]
        failed = [r for r in self.rows if not r["ok"] and r.get("integrity") != "refused"]
        if refused:
            cls: type[EdgefmError] = IntegrityError if any(r.get("refused_error") == "IntegrityError"
                                                           for r in refused) else ManifestError
            raise cls(f"{len(refused)} of {len(self.rows)} variants refused: "
                      + "; ".join(f"{r['name']} ({r['error']})" for r in refused),
                      path=refused[0]["path"], hint="re-export the refused artifacts; nothing was measured for them")
        if failed:
            raise VerificationError(f"{len(failed)} of {len(self.rows)} variants failed to run: "
                                    + "; ".join(f"{r['name']} ({r['error']})" for r in failed),
                                    path=failed[0]["path"])
        raise BudgetExceeded("failed: " + "; ".join(_row_text(r) for r in self.failed_rows), path=self.budget_path)

    def to_dict(self) -> dict:
        return {"variants": self.rows, "ratios": self.ratios, "target": self.sim,
                "target_model": self.sim_model, "budget": [r.to_dict() for r in self.budget],
                "budget_file": self.budget_path, "passed": self.passed, "verdict": self.verdict(),
                "problems": self.problems, "unverified": self.unverified, "seconds": self.seconds,
                "settings": self.settings, "per_layer": self.per_layer}


def _macs_params(v: Variant) -> tuple[int | None, int | None]:
    """MACs and parameters from the graph (.tflite/.onnx), else from the manifest. A refused
    variant's file is not parsed."""
    from firmware_sim.costs import layers_from_onnx, layers_from_tflite
    if v.refused:
        return None, None
    layers = None
    try:
        if v.kind == "tflite":
            layers = layers_from_tflite(v.path)
        elif v.kind == "onnx":
            layers = layers_from_onnx(v.path)
    except Exception:   # MACs are informative; a graph we cannot parse still gets timed
        layers = None
    if layers:
        return int(sum(l.macs for l in layers)), int(sum(l.params for l in layers))
    m, p = v.manifest.get("macs"), v.manifest.get("params")
    return (int(m) if isinstance(m, (int, float)) else None), (int(p) if isinstance(p, (int, float)) else None)


def collect_variants(inputs: Sequence[str | Path], *, unverified: bool = False) -> list[Variant]:
    """Variants of the named files and of every artifact in the named run directories. A file
    that fails its integrity check becomes a refused variant (reported, never run); a path
    that does not exist is an error."""
    seen, out = set(), []
    for p in inputs:
        p = Path(p)
        if p.is_dir():
            vs = discover(p, unverified=unverified)
        else:
            try:
                vs = [variant_for(p, unverified=unverified)]
            except ManifestError as e:
                if not p.is_file():
                    raise
                vs = [refused_variant(p, e)]
        for v in vs:
            key = v.path.resolve()
            if key not in seen:
                seen.add(key)
                out.append(v)
    names = [v.name for v in out]
    for v in out:   # same file name in two folders: qualify by folder
        if names.count(v.name) > 1:
            v.name = f"{v.path.parent.name}/{v.path.name}"
    if not out:
        raise ConfigError("nothing to profile", hint="pass .pte/.tflite/.onnx/.pt files or a run directory holding them")
    return out


def _measure_tflm_arena(path: Path) -> tuple[int | None, str]:
    """No TFLite Micro export beside the int8 .tflite: measure its arena in the tflite-micro
    interpreter ourselves (bisection on the arena size, one zero int8 window)."""
    try:
        import numpy as np
        from edgefm.adapters import tflm
        from edgefm.adapters.litert import LiteRTRunner
        data = Path(path).read_bytes()
        i = LiteRTRunner(data).input_details[0]
        x0 = np.zeros(tuple(i.shape), dtype=np.int8)
        return int(tflm.measure_arena(data, x0)), "measured by edgefm profile in the tflite-micro interpreter"
    except Exception as e:   # arena stays estimated; say why
        return None, f"not measured ({type(e).__name__}: {str(e)[:120]})"


def _pick_sim_artifact(variants: list[Variant], budget: Budget | None) -> Variant | None:
    cands = [v for v in variants if v.kind in ("tflite", "onnx") and not v.refused]
    if budget and budget.variant:
        for v in cands:
            if v.name == budget.variant or v.path.name == budget.variant:
                return v
    order = {("tflite", "int8"): 0, ("onnx", "int8"): 1, ("tflite", "fp32"): 2, ("onnx", "fp32"): 3}
    cands.sort(key=lambda v: order.get((v.kind, v.dtype), 9))
    return cands[0] if cands else None


def _ratios(rows: list[dict]) -> dict[str, float]:
    refs = {}
    for r in rows:
        if r["kind"] == "eager" and r["role"] in ("teacher", "student") and r.get("p50_ms"):
            refs.setdefault(r["role"], r)
    out = {}
    for role, ref in refs.items():
        for r in rows:
            if r is ref or not r.get("p50_ms") or (role == "student" and r["role"] == "teacher"):
                continue
            key = f"ratio_{r['kind']}_{r['dtype']}_vs_{role}_eager"
            if r["kind"] == "eager":
                key = f"ratio_{r['role']}_eager_vs_{role}_eager"
            out.setdefault(key, ref["p50_ms"] / r["p50_ms"])
            out[f"{r['name']} vs {ref['name']}"] = ref["p50_ms"] / r["p50_ms"]
    return out


def profile(inputs: Sequence[str | Path], *, device: str | None = None, budget: str | Path | Budget | None = None,
            trace: str | Path | None = None, trace_days: float = 1.0, runs: int = 100, warmup: int = 10,
            per_layer: bool = True, etdump: bool = False, progress=None, gate=None,
            unverified: bool = False) -> ProfileResult:
    """Profile artifacts (files or run directories) on the host, estimate them on ``device``,
    check ``budget``. Budget and device are validated before anything runs.

    Every variant's sha256 is checked against its manifest; one that fails is a refused row and
    the result does not pass (``passed`` False, ``raise_for_problems`` raises its error).
    ``unverified``: accept files without a manifest; their rows say ``integrity: unverified``.

    ``gate``: a ``runtime.gate.GateConfig`` for the simulated gated policies (default: the
    runtime's default gate); pass the calibrated one so the budget sees the deployed gate."""
    t0 = time.perf_counter()
    b = load_budget(budget) if isinstance(budget, (str, Path)) else budget
    dev_name = device or (b.device if b else None)
    dev = None
    if dev_name:
        from firmware_sim import load_device
        dev = load_device(dev_name)
    if runs < 1 or warmup < 0:
        raise ConfigError("runs must be >= 1 and warmup >= 0", field="runs")
    if b and b.needs_device and dev is None:
        raise ConfigError("the budget has device rows but no device is named",
                          path=b.path or None, hint="add device = \"nrf52840\" to the budget or pass --device")
    variants = collect_variants(inputs, unverified=unverified)
    traces = None
    if dev is not None and trace is not None:
        from firmware_sim import load_trace
        traces = load_trace(trace)

    rows, per_layer_out = [], {}
    for v in variants:
        if progress:
            progress(f"refused {v.name}: {v.refused}" if v.refused else
                     f"measuring {v.name} ({v.label}){' [unverified]' if v.unverified else ''}")
        if v.refused:
            m = Measurement(v, False, error="refused: " + v.refused)
        else:
            m = measure(v, runs=runs, warmup=warmup, per_layer=per_layer, etdump=etdump)
        macs, params = _macs_params(v)
        row = {"name": v.name, "path": str(v.path), "kind": v.kind, "dtype": v.dtype, "role": v.role,
               "bytes": v.path.stat().st_size, "ok": m.ok, "error": m.error, "integrity": v.integrity,
               **({"refused_error": v.refused_error} if v.refused else {}),
               "params": m.params if m.params is not None else params,
               "macs": m.macs if m.macs is not None else macs,
               "input_shape": m.input_shape, "rss_peak_mb": m.rss_peak_mb,
               "rss_model_mb": (m.rss_peak_mb - m.rss_baseline_mb) if m.ok else None, **m.extra}
        if m.ok:
            row.update(m.stats.to_dict())
        rows.append(row)
        if m.per_layer or m.per_layer_source:
            per_layer_out[v.name] = {"source": m.per_layer_source, "rows": m.per_layer[:30]}

    # .pte has no readable graph here: borrow MACs/params from a variant built from the same source
    by_src = {}
    for v, r in zip(variants, rows):
        src = v.manifest.get("source")
        if src and r["macs"] is not None and v.kind != "eager":
            by_src.setdefault(repr(src), r)
    for v, r in zip(variants, rows):
        src = v.manifest.get("source")
        if r["macs"] is None and src and repr(src) in by_src:
            r["macs"] = by_src[repr(src)]["macs"]
            r["params"] = r["params"] or by_src[repr(src)]["params"]
            r["macs_from"] = by_src[repr(src)]["name"]

    sim = sim_obj = sim_model = None
    if dev is not None:
        art = _pick_sim_artifact(variants, b)
        if art is not None:
            from firmware_sim import simulate
            from firmware_sim.reference import reference_day
            if progress:
                progress(f"simulating {art.name} on {dev.name}")
            from firmware_sim.simulate import load_model_info
            info = load_model_info(art.path, unverified=art.unverified)
            arena_note = "from the TFLite Micro export's manifest" if info.arena_bytes else ""
            if info.arena_bytes is None and art.kind == "tflite" and art.dtype == "int8":
                info.arena_bytes, arena_note = _measure_tflm_arena(art.path)
            tr = traces if traces is not None else reference_day(trace_days, fs_hz=info.fs_hz)
            if gate is not None:
                from firmware_sim import default_policies
                sim_obj = simulate(info, tr, dev, default_policies(gate))
            else:
                sim_obj = simulate(info, tr, dev)
            sim = sim_obj.to_dict()
            sim["ram"]["arena_note"] = arena_note
            sim["trace_source"] = str(trace) if traces is not None else "built-in reference day (firmware_sim.reference)"
            sim_model = art.name
    brows = []
    if b is not None:
        vrow = None
        if b.variant:
            vrow = next((r for r in rows if r["name"] == b.variant or Path(r["path"]).name == b.variant), None)
            if vrow is None:
                raise ConfigError(f"budget variant {b.variant!r} is not among the profiled variants "
                                  f"({', '.join(r['name'] for r in rows)})", path=b.path or None, field="variant")
        else:
            ok = [r for r in rows if r["ok"] and r["dtype"] == "int8"] or [r for r in rows if r["ok"]]
            vrow = min(ok, key=lambda r: r["p50_ms"]) if ok else None
        man = next((v.manifest for v in variants if vrow and v.name == vrow["name"]), {})
        # int8 rows: every int8 artifact whose manifest passed its sha256 check (a refused one
        # fails the "artifacts verified" row below)
        int8_arts = [(v.name, v.manifest or {}) for v in variants
                     if v.dtype == "int8" and v.kind != "eager" and not v.refused]
        brows = check_budget(b, variant_row=vrow, sim=sim, manifest=man, int8_artifacts=int8_arts)
        refused = [v.name for v in variants if v.refused]
        brows.append(BudgetRow("artifacts verified (sha256 vs manifest)", float(len(refused)), 0.0, "refused",
                               note=", ".join(refused)))
    return ProfileResult(rows=rows, ratios=_ratios(rows), sim=sim, sim_model=sim_model, budget=brows,
                         budget_path=str(b.path) if b else None, seconds=time.perf_counter() - t0,
                         settings={"runs": runs, "warmup": warmup, "threads": 1, "device": dev_name,
                                   "host_timing": "fresh process per variant, 1 thread, perf_counter_ns per call",
                                   "rss": "VmHWM of the variant's own process; rss_model_mb = peak - RSS after the backend's imports"},
                         per_layer=per_layer_out, _sim_obj=sim_obj)
