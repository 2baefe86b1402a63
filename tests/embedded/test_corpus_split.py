import json
from pathlib import Path

import pytest
from dcopilot.engine.training.corpus import CorpusMismatch, build_manifest, load_texts, split_of

SHIPPED = Path(__file__).resolve().parents[2] / "engine" / "embedded" / "corpus_manifest.json"


def test_split_is_by_whole_unit_and_disjoint(manifest):
    files = manifest["files"]
    train = {f["path"] for f in files if f["split"] == "train"}
    held = {f["path"] for f in files if f["split"] == "heldout"}
    assert train and held and not (train & held)
    units = {}
    for f in files:
        units.setdefault(f["unit"], set()).add(f["split"])
    assert all(len(s) == 1 for s in units.values()), "a package is split across train and held-out"
    assert all(split_of(f["unit"]) == f["split"] for f in files)


def test_no_tests_no_duplicates_no_machine_specific_files(manifest):
    paths = [f["path"] for f in manifest["files"]]
    assert not [p for p in paths if {"test", "tests", "idle_test", "site-packages"} & set(p.split("/")[:-1])]
    assert not [p for p in paths if p.split("/")[-1].startswith("_sysconfigdata")]
    hashes = [f["sha256"] for f in manifest["files"]]
    assert len(hashes) == len(set(hashes))
    assert paths == sorted(paths)


def test_manifest_is_deterministic(manifest):
    assert build_manifest()["files"] == manifest["files"]


def test_changed_file_is_detected(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n" * 20)
    (tmp_path / "b.py").write_text("y = 2\n" * 20)
    m = build_manifest(tmp_path)
    assert {f["path"] for f in m["files"]} == {"pkg/a.py", "b.py"}
    split = m["files"][0]["split"]
    assert load_texts(m, split)
    (tmp_path / m["files"][0]["path"]).write_text("changed = True\n" * 20)
    with pytest.raises(CorpusMismatch):
        load_texts(m, split)
    assert m["files"][0]["path"] not in load_texts(m, split, strict=False)


def test_shipped_manifest_matches_this_interpreter(manifest):
    shipped = json.loads(SHIPPED.read_text())
    assert shipped["files"] == manifest["files"]
    assert shipped["licence"].startswith("PSF")
