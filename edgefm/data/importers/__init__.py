"""Real-data importers: ``import_dataset(fmt, src, out, mapping=None) -> Path``.

Each format has one module that turns its files into :class:`~edgefm.data.recording.Recording`
objects; this module writes them as a ``recordings`` dataset (atomic: a failure leaves
nothing at ``out``) whose provenance lists every source file with its sha256.

=============  =======================================================  ===========================
format         source                                                    module
=============  =======================================================  ===========================
``e4``         Empatica E4 folders, WESAD layout (``SX/SX_E4_Data``)     :mod:`.e4`
``troika``     TROIKA ``DATA_*.mat`` + ``*_BPMtrace.mat`` / ``BPM_*``,    :mod:`.troika`
               test set ``TEST_*.mat`` + ``True_*.mat``
``daphnet``    Daphnet FoG ``SxxRyy.txt`` (64 Hz, mg)                     :mod:`.daphnet`
``sp-sw-har``  smartwatch HAR ``sNN/sNN_MM_sw.csv`` (~100 Hz, m/s^2)     :mod:`.sp_sw_har`
``csv``        any CSV with a timestamp column + a JSON/TOML mapping     :mod:`.csv`
``csv-windows``  one row per window (UCI HAR's layout) + a mapping       :mod:`.csv_windows`
=============  =======================================================  ===========================

>>> import_dataset("troika", "../shared/data/troika", "runs/troika")   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from edgefm.data.importers._common import ANY_LIMIT, PHYSICAL_RANGE, apply_physical_range
from edgefm.errors import ConfigError, DataError

FORMATS = ("e4", "troika", "daphnet", "sp-sw-har", "csv", "csv-windows")
#: formats that read a mapping file (``--mapping``)
MAPPED = ("csv", "csv-windows")


def import_dataset(fmt: str, src: str | Path, out: str | Path, mapping: str | Path | dict | None = None,
                   *, overwrite: bool = False, **options) -> Path:
    """Import ``src`` in format ``fmt`` into a recordings dataset at ``out``; returns ``out``.

    Args:
        fmt: one of :data:`FORMATS` (``sp_sw_har`` is accepted for ``sp-sw-har``).
        src: source folder (or file, for ``daphnet`` and ``csv``).
        out: dataset directory to write. Checked before any work
            (:func:`edgefm.manifest.check_output`): never the working folder, the source, inside
            or around it (or the mapping file, or any source file outside ``src``); an existing
            non-empty ``out`` only with ``overwrite``. Written atomically: a failure leaves the
            old ``out`` untouched.
        mapping: ``csv`` and ``csv-windows`` only: a JSON/TOML mapping file (anywhere) or an
            equivalent dict.
        overwrite: replace an existing non-empty ``out``.
        options: format options, e.g. ``include_extra=False`` (troika), ``quest_offset_s``
            (e4), ``fs_hz`` / ``max_gap_s`` (sp-sw-har), ``seed`` (subject split).

    Samples outside their channel's physical range (``_common.PHYSICAL_RANGE``) are marked
    missing and counted: per recording in ``meta["out_of_range"]``, in total in the manifest's
    ``provenance["out_of_range"]`` = ``{"total", "channels": {name: count}, "ranges"}``, which
    :func:`edgefm.data.store.info` and ``edgefm data import`` report.
    """
    from edgefm.data.store import file_provenance, prepare_output, write_recordings

    fmt = str(fmt).strip().lower().replace("_", "-")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown import format {fmt!r}", field="format",
                          hint=f"choose one of {', '.join(FORMATS)}")
    src = Path(src)
    sources = (src, mapping if isinstance(mapping, (str, Path)) else None)
    prepare_output(out, overwrite=overwrite, sources=sources)
    if not src.exists():
        raise DataError("source not found", path=src)
    if mapping is not None and fmt not in MAPPED:
        raise ConfigError(f"--mapping is only for the {' and '.join(MAPPED)} formats, not {fmt}",
                          field="mapping")
    seed = options.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be a whole number, got {seed!r}", field="seed")
    recs, files, notes, extra = _plan(fmt, src, mapping, options)
    root = src if src.is_dir() else src.parent
    outside = [f for f in files if not Path(f).resolve().is_relative_to(src.resolve())]
    if outside:  # a reference or mapping-named file outside src must not be inside or around out
        prepare_output(out, overwrite=overwrite, sources=tuple(outside))
    summary = {"total": 0, "channels": {}, "ranges": {**{f"{m}/{u}": list(r) for (m, u), r in PHYSICAL_RANGE.items()},
                                                       "other": [-ANY_LIMIT, ANY_LIMIT]}}
    provenance = {"source": fmt, "root": str(src.resolve()), "importer": f"edgefm.data.importers.{_mod(fmt)}",
                  "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()},
                  "notes": notes, "files": file_provenance(files, root=root),
                  "out_of_range": summary, **extra}  # filled in while the recordings stream (written last)
    return write_recordings(_in_range(recs, summary), out, provenance=provenance, seed=int(seed),
                            overwrite=overwrite)


def _in_range(recs, summary: dict):
    """Mark out-of-range samples missing in each recording as it streams; sum the counts."""
    for rec in recs:
        for name, n in apply_physical_range(rec).items():
            summary["channels"][name] = summary["channels"].get(name, 0) + n
            summary["total"] += n
        yield rec


def _mod(fmt: str) -> str:
    return fmt.replace("-", "_")


def _plan(fmt: str, src: Path, mapping, options: dict) -> tuple[Iterator, list[Path], str, dict]:
    """(lazy recordings, source files, provenance note, extra provenance filled while the
    recordings stream) for one format; validates options."""
    def bad_options(allowed):
        extra = set(options) - set(allowed)
        if extra:
            raise ConfigError(f"unknown option(s) for {fmt}: {', '.join(sorted(extra))}",
                              field=sorted(extra)[0], hint=f"allowed: {', '.join(allowed) or 'none'}")

    if fmt == "e4":
        from edgefm.data.importers import e4
        bad_options(("quest_offset_s", "rmssd_window_s", "rmssd_min_pairs"))
        subs = e4.find_subjects(src)
        files = [f for d in subs for f in e4.source_files(d)]
        note = ("quest.csv phases (mm.ss from RespiBAN start) placed at E4 time = quest time + offset "
                "(end-anchored estimate unless quest_offset_s is given; see meta quest_alignment)")
        return (e4.load_subject(d, **options) for d in subs), files, note, {}
    if fmt == "troika":
        from edgefm.data.importers import troika
        bad_options(("include_extra",))
        pairs = troika.find_pairs(src, include_extra=bool(options.get("include_extra", True)))
        files = [p for d, b, _, _ in pairs for p in (d, b)]
        n_test = sum(troika.is_test_file(d) for d, *_ in pairs)
        note = "hr label: 0.5 Hz blocks whose 8 s / 2 s window means equal BPM0"
        if n_test:
            note += (f"; {n_test} test-set recording(s) (TEST_*.mat, no ecg) as subjects troika-test-S<k>, "
                     "other people than the training set's troika-NN")
        return (troika.load_recording(*p) for p in pairs), files, note, {}
    if fmt == "daphnet":
        from edgefm.data.importers import daphnet
        bad_options(())
        fs = daphnet.find_files(src)
        return (daphnet.load_file(f) for f in fs), fs, "acc_* = ankle; thigh_acc_*, trunk_acc_*; mg -> g", {}
    if fmt == "sp-sw-har":
        from edgefm.data.importers import sp_sw_har
        bad_options(("fs_hz", "max_gap_s"))
        fs = sp_sw_har.find_files(src)
        extra = [p for p in (src / "subjects_info.csv", src / "executions_info.csv") if src.is_dir() and p.is_file()]
        subj = sp_sw_har.read_info_table(src / "subjects_info.csv", "subject_id") if src.is_dir() else {}
        exe = sp_sw_har.read_info_table(src / "executions_info.csv", "execution_id") if src.is_dir() else {}
        return (sp_sw_har.load_file(f, subject_info=subj, execution_info=exe, **options) for f in fs), \
            fs + extra, "irregular ~100 Hz resampled linearly to a uniform grid; duplicates averaged", {}
    bad_options(())
    if mapping is None:
        raise ConfigError(f"the {fmt} format needs a mapping (--mapping FILE.json|toml)", field="mapping")
    if fmt == "csv-windows":
        from edgefm.data.importers import csv_windows
        mp, _ = csv_windows.load_mapping(mapping, src)
        summary = csv_windows.new_summary(mp)
        return csv_windows.load_all(mp, summary), csv_windows.source_files(mp), \
            ("one row per window: rows of a subject whose overlaps agree joined into one stream; labels "
             "from the row whose window centre is nearest"), {"csv_windows": summary}
    from edgefm.data.importers import csv as csv_mod
    mp, mp_file = csv_mod.load_mapping(mapping)
    fs = csv_mod.find_files(src)
    files = fs + ([mp_file] if mp_file is not None else [])
    return (csv_mod.load_file(f, mp) for f in fs), files, "generic CSV with mapping", {}


def reference_window_counts(path: str | Path, label: str = "hr", window_s: float = 8.0,
                            hop_s: float = 2.0) -> dict[str, int]:
    """Per recording: how many ``window_s``/``hop_s`` windows (as ``wrist-raw`` cuts them) have a
    known ``label`` (a continuous track with at least one finite value inside the window).

    For a TROIKA import this equals ``len(BPM0)`` per recording.
    """
    from edgefm.data.store import load_member, open_manifest

    path = Path(path)
    m = open_manifest(path, "recordings")
    out = {}
    for e in m["recordings"]:
        d = e["labels"].get(label)
        if d is None or d["kind"] != "continuous":
            continue
        v = load_member(path / "recordings" / e["dir"] / f"label.{label}.npy", shape=(d.get("n"),),
                        kinds="f", mmap=False, what=f"label {label}")
        fs = float(d["fs_hz"])
        # windows as window_recording cuts them at 32 Hz: starts k*hop_s while start+window <= duration
        n32 = int(np.floor(e["duration_s"] * 32.0 + 1e-6))
        W, H = int(round(window_s * 32)), int(round(hop_s * 32))
        if n32 < W:
            out[e["id"]] = 0
            continue
        starts = np.arange(0, n32 - W + 1, H) / 32.0
        known = np.isfinite(v)
        cs = np.r_[0, np.cumsum(known)]
        a = np.floor(starts * fs + 1e-9).astype(int).clip(0, v.size)
        b = np.ceil((starts + window_s) * fs - 1e-9).astype(int).clip(0, v.size)
        out[e["id"]] = int(((cs[b] - cs[a]) > 0).sum())
    return out
