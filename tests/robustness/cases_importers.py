"""Importer cases: E4, TROIKA, Daphnet, smartwatch HAR and CSV + mapping sources that are corrupt,
truncated, empty, of the wrong shape, NaN/inf, absurd (1e30, timestamps 0 or 1e18, µs instead of
ms), with codes out of range, and mappings whose names would escape the output.

Rules (docs/DESIGN.md "Safety contracts"): a bad file is a typed error naming the file and field;
a value outside a channel's physical range is marked missing (a typed error is also accepted,
never stored as valid); no name from a mapping touches a path unchecked.
"""

from __future__ import annotations

import json

import numpy as np

from tests.robustness import fixtures as fx
from tests.robustness.checks import (dataset_written, events_within, labels_within, max_duration,
                                     no_valid_beyond)
from tests.robustness.harness import Case, all_of

CASES: list[Case] = []
OWNER = "D"


def add(id, setup, expect="error", check=None, match=None, owner=OWNER, timeout=None, klass="importer"):
    c = Case(f"{klass}/{id}", klass, setup, expect, check, match, owner)
    if timeout:
        c.timeout = timeout
    CASES.append(c)


def imp(fmt, src, *extra):
    def argv(sb):
        sb.output("out")
        return ["data", "import", fmt, str(src(sb)), "--out", "out", *extra]
    return argv


ACC_G = 1e6      # no wrist accelerometer reads a million g: such a sample is not a measurement

# ------------------------------------------------------------------ E4 (WESAD layout)

E4_OK = ("ppg", "acc_x", "acc_y", "acc_z", "eda", "temp", "hr")


def e4(**override):
    return lambda sb: fx.make_e4(sb, **override)


def e4_acc_rows(rows: str, n_ok: int = 32 * 59):
    """ACC.csv whose data rows are ``n_ok`` good rows then ``rows``."""
    t0 = fx.T0
    return f"{t0}, {t0}, {t0}\n32, 32, 32\n" + "1,2,64\n" * n_ok + rows


add("e4/control-valid-folder", imp("e4", e4()), expect="ok", check=dataset_written("out", "recordings"))
add("e4/acc-zero-data-rows", imp("e4", e4(ACC=f"{fx.T0}, {fx.T0}, {fx.T0}\n32, 32, 32\n")), match="ACC")
add("e4/bvp-zero-data-rows", imp("e4", e4(BVP=f"{fx.T0}\n64\n")), match="BVP")
add("e4/acc-empty-file", imp("e4", e4(ACC="")), match="ACC")
add("e4/acc-missing", imp("e4", e4(ACC=None)), match="ACC")
add("e4/acc-binary", imp("e4", e4(ACC=b"\x00\xff\x13garbage\x00" * 50)), match="ACC")
add("e4/acc-two-columns", imp("e4", e4(ACC=f"{fx.T0}, {fx.T0}\n32, 32\n1,2\n" * 3)), match="ACC")
add("e4/acc-rate-nan", imp("e4", e4(ACC=f"{fx.T0}, {fx.T0}, {fx.T0}\nnan, nan, nan\n1,2,64\n")), match="ACC")
add("e4/acc-rate-zero", imp("e4", e4(ACC=f"{fx.T0}, {fx.T0}, {fx.T0}\n0, 0, 0\n1,2,64\n")), match="ACC")
add("e4/acc-rate-negative", imp("e4", e4(ACC=f"{fx.T0}, {fx.T0}, {fx.T0}\n-32, -32, -32\n1,2,64\n")), match="ACC")
add("e4/acc-start-inf", imp("e4", e4(ACC=f"inf, inf, inf\n32, 32, 32\n1,2,64\n")), match="ACC")
add("e4/acc-start-time-zero", imp("e4", e4(ACC=e4_acc_rows("").replace(str(fx.T0), "0"))),
    match="ACC|start")
add("e4/acc-start-time-1e18", imp("e4", e4(ACC=e4_acc_rows("").replace(str(fx.T0), "1e18"))),
    match="ACC|start")
add("e4/bvp-start-time-zero", imp("e4", e4(BVP=fx.e4_files()["BVP"].replace(str(fx.T0), "0", 1))),
    match="BVP|start")
add("e4/hr-start-time-negative", imp("e4", e4(HR="-1e12\n1\n" + "70\n" * 50)), match="HR|start")
add("e4/eda-start-time-1e18", imp("e4", e4(EDA="1e18\n4\n" + "0.5\n" * 240)), match="EDA|start")
add("e4/all-start-times-zero", imp("e4", lambda sb: fx.make_e4(
    sb, **{k: v.replace(str(fx.T0 + 10), "0").replace(str(fx.T0), "0") for k, v in fx.e4_files().items()})),
    expect="either")
add("e4/acc-1e30-marked-missing", imp("e4", e4(ACC=e4_acc_rows("1e30,1e30,1e30\n" * 32))),
    expect="either", check=no_valid_beyond(ACC_G, ("acc_x", "acc_y", "acc_z")))
add("e4/acc-minus-1e30-marked-missing", imp("e4", e4(ACC=e4_acc_rows("-1e30,2,64\n" * 32))),
    expect="either", check=no_valid_beyond(ACC_G, ("acc_x",)))
add("e4/acc-nan-inf-rows-missing", imp("e4", e4(ACC=e4_acc_rows("nan,inf,-inf\n" * 32))),
    expect="ok", check=no_valid_beyond(ACC_G, ("acc_x", "acc_y", "acc_z")))
add("e4/acc-truncated-mid-row", imp("e4", e4(ACC=e4_acc_rows("1,2", 32 * 60 - 1))), expect="ok",
    check=no_valid_beyond(ACC_G))
add("e4/acc-garbage-row", imp("e4", e4(ACC=e4_acc_rows("1,x,3\n4,5,6\n"))), match="ACC")
add("e4/hr-1e30-bpm", imp("e4", e4(HR=f"{fx.T0}\n1\n" + "70.0\n" * 40 + "1e30\n" * 10)),
    expect="either", check=no_valid_beyond(1000.0, ("hr",)))
add("e4/temp-1e30", imp("e4", e4(TEMP=f"{fx.T0}\n4\n" + "33.0\n" * 200 + "1e30\n" * 40)),
    expect="either", check=no_valid_beyond(1000.0, ("temp",)))
add("e4/eda-minus-1e30", imp("e4", e4(EDA=f"{fx.T0}\n4\n" + "0.5\n" * 200 + "-1e30\n" * 40)),
    expect="either", check=no_valid_beyond(1e6, ("eda",)))
add("e4/bvp-1e30", imp("e4", e4(BVP=f"{fx.T0}\n64\n" + "1.0\n" * 3000 + "1e30\n" * 840)),
    expect="either", check=no_valid_beyond(1e12, ("ppg",)))
add("e4/ibi-start-1e18", imp("e4", e4(IBI="1e18, IBI\n" + "".join(f"{1 + 0.8 * k:.3f},0.800\n" for k in range(50)))),
    expect="either", check=events_within("beats"))
add("e4/ibi-binary", imp("e4", e4(IBI=b"\x00\x01garbage")), match="IBI")
add("e4/quest-end-before-start", imp("e4", lambda sb: fx.make_e4(
    sb, quest="# ORDER;Base\n# START;0.30\n# END;0.10\n")), match="quest")
add("e4/quest-seconds-over-59", imp("e4", lambda sb: fx.make_e4(
    sb, quest="# ORDER;Base\n# START;0.75\n# END;0.80\n")), match="quest")
add("e4/quest-missing-rows", imp("e4", lambda sb: fx.make_e4(sb, quest="# ORDER;Base\n")), match="quest")
add("e4/quest-huge-minutes", imp("e4", lambda sb: fx.make_e4(
    sb, quest="# ORDER;Base\n# START;99999999999999.00\n# END;999999999999999.00\n")), expect="either")
add("e4/quest-binary", imp("e4", lambda sb: fx.make_e4(sb, quest="\x00\x00\x01")), match="quest")
add("e4/tags-1e18", imp("e4", lambda sb: (fx.make_e4(sb), sb.write("e4src/S9/S9_E4_Data/tags.csv", "1e18\n"))[0]),
    expect="either")
add("e4/source-is-empty-folder", imp("e4", lambda sb: sb.p("empty").mkdir() or sb.p("empty")), match="empty")
add("e4/source-missing", imp("e4", lambda sb: sb.p("nope")), match="nope")
for v in ("nan", "inf", "-inf", "1e12", "-1e12"):
    add(f"e4/quest-offset-{v}", imp("e4", e4(), "--quest-offset-s", v), match="quest")

# ------------------------------------------------------------------ TROIKA (.mat)


def troika(**kw):
    return lambda sb: fx.make_troika(sb, **kw)


def _sig(mod=None, n_s=30):
    rng = np.random.default_rng(1)
    s = rng.normal(size=(6, 125 * n_s))
    s[5] += 1.0
    if mod:
        mod(s)
    return s


def _set(rows, cols, value):
    def mod(s):
        s[rows, cols] = value
    return mod


add("troika/control-valid", imp("troika", troika()), expect="ok", check=dataset_written("out", "recordings"))
add("troika/acc-1e30-marked-missing", imp("troika", troika(sig=_sig(_set(3, slice(100, 200), 1e30)))),
    expect="either", check=no_valid_beyond(ACC_G, ("acc_x", "acc_y", "acc_z")))
add("troika/ppg-1e30-marked-missing", imp("troika", troika(sig=_sig(_set(1, slice(100, 200), 1e30)))),
    expect="either", check=no_valid_beyond(1e12))
add("troika/acc-inf-missing", imp("troika", troika(sig=_sig(_set(4, slice(0, 50), np.inf)))), expect="ok",
    check=no_valid_beyond(ACC_G))
add("troika/bpm-code-65537", imp("troika", troika(bpm=[80.0] * 11 + [65537.0])), match="BPM")
add("troika/bpm-negative", imp("troika", troika(bpm=[-80.0] * 12)), match="BPM")
add("troika/bpm-empty", imp("troika", troika(bpm=np.zeros(0))), match="BPM")
add("troika/data-truncated", imp("troika", lambda sb: fx.make_troika(
    sb, raw_data=_mat_bytes(_sig())[: 400])), match="DATA_01")
add("troika/data-empty-file", imp("troika", troika(raw_data=b"")), match="DATA_01")
add("troika/data-garbage", imp("troika", troika(raw_data=b"MATLAB 5.0 MAT-file" + b"\xff" * 200)), match="DATA_01")
add("troika/bpm-garbage", imp("troika", troika(raw_bpm=b"\x00" * 64)), match="BPM")
add("troika/sig-wrong-shape", imp("troika", troika(sig=np.zeros((5, 3750)))), match="sig")
add("troika/sig-3d", imp("troika", troika(sig=np.zeros((6, 10, 10)))), match="sig")
add("troika/sig-too-short", imp("troika", troika(sig=_sig()[:, :100])), match="sig")
add("troika/acc-not-in-g", imp("troika", troika(sig=_sig(lambda s: s.__imul__(1000.0)))), match="sig|acc")


def _mat_bytes(sig) -> bytes:
    import io
    import scipy.io as sio
    b = io.BytesIO()
    sio.savemat(b, {"sig": sig})
    return b.getvalue()


def _troika_strsig(sb):
    import scipy.io as sio
    root = fx.make_troika(sb)
    sio.savemat(str(root / "Training_data/DATA_01_TYPE01.mat"), {"sig": np.array(["abc", "def"])})
    return root


add("troika/sig-is-text", imp("troika", _troika_strsig), match="sig")

# ------------------------------------------------------------------ Daphnet (space-separated, 64 Hz, mg)


def daph(text):
    def src(sb):
        fx.make_daphnet(sb, text if not callable(text) else text())
        return sb.p("daphnet")
    return src


LAST = 639
add("daphnet/control-valid", imp("daphnet", daph(fx.daphnet_text())), expect="ok",
    check=dataset_written("out", "recordings"))
add("daphnet/last-timestamp-1e18", imp("daphnet", daph(fx.daphnet_text(rows={LAST: "1e18 10 20 -1000 1 2 3 4 5 6 1"}))),
    match="time")
add("daphnet/first-timestamp-minus-1e18", imp("daphnet", daph(
    fx.daphnet_text(rows={0: "-1e18 10 20 -1000 1 2 3 4 5 6 1"}))), match="time")
add("daphnet/timestamp-jump-1e12-ms", imp("daphnet", daph(
    fx.daphnet_text(rows={LAST: "1000000000000 10 20 -1000 1 2 3 4 5 6 1"}))), match="time")
add("daphnet/acc-1e30-mg", imp("daphnet", daph(fx.daphnet_text(rows={k: f"{int(round(15 + k * 15.625))} 1e30 20 -1000 1 2 3 4 5 6 1"
                                                                    for k in range(100, 120)}))),
    expect="either", check=no_valid_beyond(ACC_G))
add("daphnet/label-65537", imp("daphnet", daph(fx.daphnet_text(label=65537))), match="label")
add("daphnet/label-minus-1", imp("daphnet", daph(fx.daphnet_text(label=-1))), match="label")
add("daphnet/label-2.5", imp("daphnet", daph(fx.daphnet_text(label=2.5))), match="label")
add("daphnet/empty-file", imp("daphnet", daph("")), match="S01R01")
add("daphnet/one-row", imp("daphnet", daph(fx.daphnet_text(n=1))), match="S01R01")
add("daphnet/binary", imp("daphnet", daph(b"\x00\x01\x02" * 100)), match="S01R01")
add("daphnet/header-line", imp("daphnet", daph("time ax ay az tx ty tz kx ky kz label\n" + fx.daphnet_text())),
    match="S01R01")
add("daphnet/twelve-columns", imp("daphnet", daph(fx.daphnet_text().replace(" 1\n", " 1 7\n"))), match="S01R01")
add("daphnet/backwards-time", imp("daphnet", daph("\n".join(fx.daphnet_text(n=50).splitlines()[::-1]) + "\n")),
    match="time")
add("daphnet/nan-time-mid-file", imp("daphnet", daph(fx.daphnet_text(rows={300: "nan 10 20 -1000 1 2 3 4 5 6 1"}))),
    match="time")
add("daphnet/100hz-not-64", imp("daphnet", daph(fx.daphnet_text(step=10.0))), match="time")
add("daphnet/inf-acc-missing", imp("daphnet", daph(fx.daphnet_text(acc="inf nan -inf"))), expect="ok",
    check=no_valid_beyond(ACC_G))

# ------------------------------------------------------------------ smartwatch HAR (sNN_MM_sw.csv)

MS0 = 1_600_000_000_000


def har(text):
    return lambda sb: fx.make_har(sb, text)


add("har/control-valid", imp("sp-sw-har", har(fx.har_text())), expect="ok", check=dataset_written("out", "recordings"))
add("har/timestamps-in-us", imp("sp-sw-har", har(fx.har_text([MS0 * 1000 + 10_000 * k for k in range(300)]))),
    match="timestamp")
add("har/timestamps-in-s", imp("sp-sw-har", har(fx.har_text([MS0 / 1000 + 0.01 * k for k in range(300)]))),
    match="timestamp")
add("har/us-timestamps-not-stretched", imp("sp-sw-har", har(fx.har_text([MS0 * 1000 + 10_000 * k for k in range(300)]))),
    expect="either", check=max_duration(5.0))
add("har/last-timestamp-1e18", imp("sp-sw-har", har(fx.har_text([MS0 + 10 * k for k in range(299)] + [10**18]))),
    match="timestamp")
add("har/first-timestamp-zero", imp("sp-sw-har", har(fx.har_text([0] + [MS0 + 10 * k for k in range(299)]))),
    match="timestamp")
add("har/header-only", imp("sp-sw-har", har(fx.HAR_HEADER)), match="s01_01")
add("har/zero-bytes", imp("sp-sw-har", har("")), match="s01_01")
add("har/binary", imp("sp-sw-har", har(b"\x00\x01\x02\xff" * 64)), match="s01_01")
add("har/acc-1e30", imp("sp-sw-har", har(fx.har_text(acc="1e30,0,9.80665"))), expect="either",
    check=no_valid_beyond(ACC_G))
add("har/gyro-1e30", imp("sp-sw-har", har(fx.har_text().replace("0.1,0.2,0.3", "1e30,0.2,0.3"))),
    expect="either", check=no_valid_beyond(1e6))
add("har/acc-inf-missing", imp("sp-sw-har", har(fx.har_text(acc="inf,nan,9.80665"))), expect="ok",
    check=no_valid_beyond(ACC_G))
add("har/label-code-65537", imp("sp-sw-har", har(fx.har_text(label="65537"))), match="label")
add("har/unknown-label", imp("sp-sw-har", har(fx.har_text(label="FLYING"))), match="label")
add("har/missing-column", imp("sp-sw-har", har(fx.har_text().replace("x_gyro,", ""))), match="x_gyro|s01_01")
add("har/all-same-timestamp", imp("sp-sw-har", har(fx.har_text([MS0] * 50))), match="timestamp")
add("har/backwards", imp("sp-sw-har", har(fx.har_text([MS0 + 10 * k for k in range(50)][::-1]))), match="timestamp")
add("har/non-numeric-acc", imp("sp-sw-har", har(fx.har_text(acc="abc,0,9.8"))), match="x_acc")

# ------------------------------------------------------------------ CSV + mapping


def csvsrc(text=None, mapping=None, mapping_rel=None, src="file"):
    def f(sb):
        csv, mp = fx.make_csv(sb, text, mapping, mapping_rel=mapping_rel)
        return csv if src == "file" else csv.parent
    return f


def imp_csv(text=None, mapping=None, mapping_rel=None, src="file", extra=(), out="out"):
    """``data import csv``; ``out`` deep enough that a name with four ``..`` still lands in the
    sandbox (where the snapshot sees it)."""
    def argv(sb):
        path = csvsrc(text, mapping, mapping_rel, src)(sb)
        mp = sb.p(mapping_rel or "csvsrc/map.json")
        sb.p(out).parent.mkdir(parents=True, exist_ok=True)
        sb.output(out)
        return ["data", "import", "csv", str(path), "--out", out, "--mapping", str(mp), *extra]
    return argv


DEEP = "d1/d2/d3/out"
T = r"field 't'|timestamp"


def chan(name, col="ax"):
    m = fx.csv_mapping()
    m["columns"][col] = {**m["columns"][col], "channel": name}
    return m


def label_name(name):
    m = fx.csv_mapping()
    m["labels"]["state"]["name"] = name
    return m


add("csv/control-valid", imp_csv(), expect="ok", check=dataset_written("out", "recordings"))
add("csv/mapping-outside-csv-folder", imp_csv(mapping_rel="maps/m.json"), expect="ok",
    check=dataset_written("out", "recordings"))
add("csv/mapping-outside-csv-folder-toml", lambda sb: _toml_outside(sb), expect="ok",
    check=dataset_written("out", "recordings"))
add("csv/folder-source-mapping-elsewhere", imp_csv(mapping_rel="cfg/m.json", src="dir"), expect="ok",
    check=dataset_written("out", "recordings"))


def _toml_outside(sb):
    fx.make_csv(sb)
    sb.write("cfg/map.toml", 'fs_hz = 50\ntimestamp = "t"\ntimestamp_unit = "ms"\n'
             '[columns.ax]\nchannel = "acc_x"\nmodality = "acc"\nunit = "g"\n')
    sb.output("out")
    return ["data", "import", "csv", "csvsrc/rec.csv", "--out", "out", "--mapping", "cfg/map.toml"]


for cid, name in (("dotdot-3", "../../../escaped"), ("dotdot-4", "../../../../escaped"), ("dotdot-1", "../x"),
                  ("slash", "a/b"), ("hidden", ".hidden"), ("dotdot-only", ".."), ("dot", "."),
                  ("nul", "acc\x00x"), ("backslash", "..\\..\\x"), ("too-long", "x" * 300),
                  ("newline", "acc\nx"), ("tilde-home", "~/x")):
    add(f"csv/channel-{cid}", imp_csv(mapping=chan(name), out=DEEP), match="channel|unsafe|name")


def _abs_channel(sb):
    target = sb.p("abs_target")
    target.mkdir()
    sb.keep("abs_target/keep.txt")
    fx.make_csv(sb, mapping=chan(str(target / "x")))
    sb.output("out")
    return ["data", "import", "csv", "csvsrc/rec.csv", "--out", "out", "--mapping", "csvsrc/map.json"]


add("csv/channel-absolute-path", _abs_channel, match="channel|unsafe|name")
for cid, name in (("dotdot", "../../../lab"), ("absolute", "/tmp/edgefm-robustness-lab"), ("hidden", ".lab"),
                  ("slash", "a/b")):
    add(f"csv/label-name-{cid}", imp_csv(mapping=label_name(name), out=DEEP), match="label|unsafe|name")
add("csv/subject-dotdot", imp_csv(mapping=fx.csv_mapping(subject="../../../subj"), out=DEEP), expect="either")
add("csv/timestamp-unit-us-for-ms-data", imp_csv(mapping=fx.csv_mapping(timestamp_unit="us")), match=T + "|rate")
add("csv/timestamp-unit-s-for-ms-data", imp_csv(mapping=fx.csv_mapping(timestamp_unit="s")), match=T + "|rate")
add("csv/timestamp-unit-bogus", imp_csv(mapping=fx.csv_mapping(timestamp_unit="fortnights")), match="timestamp_unit")
for v, tag in ((float("inf"), "inf"), (float("nan"), "nan"), (0, "zero"), (-50, "negative"), (1e12, "huge"),
               ("fast", "string")):
    add(f"csv/fs-hz-{tag}", imp_csv(mapping=json.dumps(fx.csv_mapping(fs_hz=v)) if not isinstance(v, float)
                                      else json.dumps(fx.csv_mapping(fs_hz=v)).replace("Infinity", "1e999")),
        match="fs_hz|rate|" + T)
for v, tag in (("NaN", "nan"), ("-1", "negative")):
    add(f"csv/max-gap-{tag}", imp_csv(mapping=json.dumps(fx.csv_mapping()).replace('"fs_hz"', f'"max_gap_s": {v}, "fs_hz"')),
        match="max_gap")
add("csv/scale-1e300", imp_csv(mapping=json.dumps(chan("acc_x")).replace('"scale": 0.001', '"scale": 1e300')),
    expect="either", check=no_valid_beyond(ACC_G))
add("csv/value-1e30-g", imp_csv(text=fx.csv_text(value=lambda k: "1e33" if 50 <= k < 60 else str(k))),
    expect="either", check=no_valid_beyond(ACC_G))
add("csv/value-inf-missing", imp_csv(text=fx.csv_text(value=lambda k: "inf" if k == 7 else str(k))), expect="ok",
    check=no_valid_beyond(ACC_G))
add("csv/last-timestamp-1e18", imp_csv(text=fx.csv_text() + "1e18,1,0,1,rest\n"), match=T)
add("csv/first-timestamp-zero-then-epoch", imp_csv(
    text="t,ax,ay,az,state\n0,1,0,1,rest\n" + "".join(f"{1.6e12 + 20 * k:.0f},1,0,1,rest\n" for k in range(200))),
    match=T)
add("csv/all-same-timestamp", imp_csv(text="t,ax,ay,az,state\n" + "5,1,0,1,rest\n" * 50), expect="either")
add("csv/empty-file", imp_csv(text=""), match="rec.csv")
add("csv/header-only", imp_csv(text="t,ax,ay,az,state\n"), match="rec.csv")
add("csv/binary", imp_csv(text=b"\x00\x01\xfe\xff" * 40), match="rec.csv")
add("csv/missing-mapped-column", imp_csv(text=fx.csv_text().replace("ay", "zz")), match="ay")
add("csv/non-numeric-value", imp_csv(text=fx.csv_text(value=lambda k: "oops" if k == 5 else str(k))), match="ax")
add("csv/backwards-timestamps", imp_csv(text="t,ax,ay,az,state\n" + "".join(
    f"{(200 - k) * 20},1,0,1,rest\n" for k in range(200))), match=T)


def codes_csv(code):
    text = "t,ax,ay,az,state\n" + "".join(f"{20 * k},1,0,1,{0 if k < 100 else code}\n" for k in range(200))
    m = fx.csv_mapping()
    m["labels"]["state"] = {"name": "activity", "kind": "categorical"}
    return imp_csv(text=text, mapping=m)


add("csv/label-code-65537-no-wrap", codes_csv(65537), expect="either", check=labels_within("activity", {-1, 0}))
add("csv/label-code-minus-5", codes_csv(-5), expect="either", check=labels_within("activity", {-1, 0}))
add("csv/label-code-1e10", codes_csv(10_000_000_000), expect="either", check=labels_within("activity", {-1, 0}))
add("csv/label-code-2.5", codes_csv(2.5), match="state|label")
add("csv/label-code-out-of-classes", imp_csv(text=fx.csv_text(state="7")), match="state|label")
add("csv/label-classes-not-a-list", imp_csv(mapping=json.dumps(fx.csv_mapping()).replace('["rest", "walk"]', '"rest"')),
    match="classes|labels")
add("csv/mapping-not-json", imp_csv(mapping="{not json"), match="map")
add("csv/mapping-is-list", imp_csv(mapping="[1, 2, 3]"), match="map")
add("csv/mapping-binary", imp_csv(mapping="\x00\x01\x02"), match="map")
add("csv/mapping-missing-fs", imp_csv(mapping={k: v for k, v in fx.csv_mapping().items() if k != "fs_hz"}),
    match="fs_hz")
add("csv/mapping-columns-empty", imp_csv(mapping=fx.csv_mapping(columns={})), match="columns")
add("csv/mapping-scale-string", imp_csv(mapping=json.dumps(chan("acc_x")).replace('"scale": 0.001', '"scale": "big"')),
    match="scale")
add("csv/mapping-file-missing", lambda sb: (fx.make_csv(sb), sb.output("out"),
                                            ["data", "import", "csv", "csvsrc/rec.csv", "--out", "out",
                                             "--mapping", "nope.json"])[-1], match="nope|mapping")
add("csv/no-mapping", lambda sb: (fx.make_csv(sb), sb.output("out"),
                                  ["data", "import", "csv", "csvsrc/rec.csv", "--out", "out"])[-1], match="mapping")
add("csv/hidden-csv-in-folder", lambda sb: (fx.make_csv(sb), sb.write("csvsrc/.x.csv", fx.csv_text()),
                                            sb.output("out"),
                                            ["data", "import", "csv", "csvsrc", "--out", "out", "--mapping",
                                             "csvsrc/map.json"])[-1], expect="either")
add("csv/mapping-for-e4", lambda sb: (fx.make_e4(sb), fx.make_csv(sb), sb.output("out"),
                                      ["data", "import", "e4", "e4src", "--out", "out", "--mapping",
                                       "csvsrc/map.json"])[-1], match="mapping")
