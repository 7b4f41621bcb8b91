"""The shared output guards: check_output, atomic_dir, stale temporaries, safe_name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edgefm.errors import ConfigError, DataError, ManifestError
from edgefm.manifest import (atomic_dir, check_output, is_temporary, remove_stale_temporaries,
                             safe_name)


def _precious(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("precious")
    return folder / "a.txt"


def test_atomic_dir_refuses_to_replace_a_non_empty_folder(tmp_path):
    a = _precious(tmp_path / "keep")
    with pytest.raises(ManifestError, match="already exists"):
        with atomic_dir(tmp_path / "keep") as tmp:
            (tmp / "new.txt").write_text("x")
    assert a.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]      # no temporary left behind


def test_atomic_dir_replaces_with_overwrite_and_fills_an_empty_folder(tmp_path):
    _precious(tmp_path / "keep")
    with atomic_dir(tmp_path / "keep", overwrite=True) as tmp:
        (tmp / "new.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "keep").iterdir()) == ["new.txt"]
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as tmp:
        (tmp / "b").write_text("y")
    assert (tmp_path / "empty" / "b").read_text() == "y"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "keep"]


def test_atomic_dir_failure_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".stage.tmp-{dead}-abc"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    live = tmp_path / f".stage.tmp-{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / ".stagex.tmp-1-x"       # another name's temporary is not touched
    other.mkdir()
    removed = remove_stale_temporaries(tmp_path, "stage")
    assert removed == [stale] and not stale.exists() and live.exists() and other.exists()
    assert is_temporary(live / "model.onnx") and not is_temporary(tmp_path / "stage" / "model.onnx")


@pytest.mark.parametrize("rel", [".", "..", ""])
def test_check_output_refuses_cwd_and_parent(tmp_path, monkeypatch, rel):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        check_output(rel)


def test_check_output_refuses_source_and_its_relatives(tmp_path):
    src = tmp_path / "src"
    _precious(src)
    for out in (src, src / "inner", tmp_path):
        with pytest.raises(ConfigError, match="input"):
            check_output(out, sources=(src,), overwrite=True)
    check_output(tmp_path / "elsewhere", sources=(src,))


def test_check_output_refuses_non_empty_without_overwrite(tmp_path):
    _precious(tmp_path / "keep")
    with pytest.raises(ConfigError, match="--overwrite"):
        check_output(tmp_path / "keep")
    (tmp_path / "f.json").write_text("{}")
    with pytest.raises(ConfigError, match="--overwrite"):
        check_output(tmp_path / "f.json", option="--report")
    assert check_output(tmp_path / "keep", overwrite=True) == tmp_path / "keep"
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")


def test_check_output_refuses_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigError, match="symbolic link"):
        check_output(tmp_path / "link", overwrite=True)


@pytest.mark.parametrize("name", ["../x", "/abs", ".hidden", "a/b", "a\\b", "..", "", "x" * 101,
                                  "a\x00b", "ok..bad", " lead", "name\n"])
def test_safe_name_refuses(name):
    with pytest.raises(DataError):
        safe_name(name, what="channel", path="map.csv")


@pytest.mark.parametrize("name", ["acc_x", "S1", "ppg2", "walking-fast", "v1.2", "a+b"])
def test_safe_name_accepts(name):
    assert safe_name(name, what="channel") == name


def test_check_output_refuses_a_path_below_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_output(tmp_path / "afile" / "deeper" / "out")


def test_a_manifest_that_is_not_an_object_is_a_typed_error(tmp_path):
    from edgefm.manifest import manifest_path_for, read_artifact_manifest
    art = tmp_path / "m.onnx"
    art.write_bytes(b"x")
    for text in ("[1, 2]", "3", '"s"', "null"):
        manifest_path_for(art).write_text(text)
        with pytest.raises(ManifestError, match="JSON object"):
            read_artifact_manifest(art)
    manifest_path_for(art).unlink()
    manifest_path_for(art).mkdir()
    with pytest.raises(ManifestError, match="cannot read"):
        read_artifact_manifest(art)
