"""Corpus v2 end to end on small registry archives written here (sdist, npm tarball, .deb): no network.

The archives sit in the download cache where the build looks first, so the real build runs: licence checks from
package metadata, filters, dedup against the held-out benchmark's sources, the package split, the manifest and
the reading API.
"""

import dataclasses
import gzip
import io
import json
import shutil
import subprocess
import tarfile
import textwrap
import time
from pathlib import Path

import pytest
from dcopilot.engine.training import corpus_fetch, corpus_v2
from dcopilot.engine.training.corpus_fetch import package_dir

HELDOUT_KEY = "toolz@0.12.1/toolz/dicttoolz.py"
SHELL_LOOP = 'for f in "$@"; do\n    echo "processing $f"\n    wc -l "$f"\ndone\n'


def _code(tag: str, n: int = 30) -> str:
    return "".join(f"def {tag}_{i}(value, scale):\n    return value * {i} + scale  # {tag}\n\n" for i in range(n))


def _tar(path: Path, top: str, files: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _deb(cache: Path, name: str, version: str, files: dict[str, str]) -> None:
    root = cache / "debroot" / name
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.org>\n"
        "Description: test package\n"
    )
    d = package_dir(cache / "downloads", "debian", name)
    d.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(d / f"{name}_{version}_all.deb")],
        check=True,
        capture_output=True,
    )


DEP5 = textwrap.dedent("""\
    Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

    Files: *
    Copyright: someone
    License: Expat

    Files: gpl/*
    Copyright: someone else
    License: GPL-2+

    Files: debian/*
    Copyright: packager
    License: GPL-2+
    """)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("dpkg-deb") is None:
        pytest.fail("dpkg-deb is missing (Debian's dpkg): corpus v2 reads .deb packages with it")
    base = tmp_path_factory.mktemp("corpus")
    cache, out = base / "cache", base / "v2"
    heldout = json.loads(gzip.decompress((corpus_v2.HELDOUT_DIR / "sources.json.gz").read_bytes()))
    mit = "Metadata-Version: 2.1\nName: {n}\nVersion: 1.0\nLicense-Expression: MIT\n"
    _tar(
        package_dir(cache / "downloads", "pypi", "goodpy") / "goodpy-1.0.tar.gz",
        "goodpy-1.0",
        {
            "PKG-INFO": mit.format(n="goodpy"),
            "goodpy/core.py": _code("core"),
            "goodpy/core_copy.py": _code("core"),  # exact duplicate
            "goodpy/core_edit.py": _code("core").replace("core_7(", "renamed_7("),  # near duplicate
            "goodpy/_vendor/six.py": _code("six"),  # vendored
            "goodpy/api_pb2.py": _code("pb"),  # generated
            "goodpy/table.py": "T = [\n" + "    0x1f, 0x2e, 0x3d, 0x4c,\n" * 80 + "]\n",  # data
            "goodpy/dicts.py": heldout[HELDOUT_KEY],  # a copy of held-out benchmark code
            "scripts/run.sh": "#!/bin/sh\nset -eu\n" + SHELL_LOOP * 3,
        },
    )
    _tar(
        package_dir(cache / "downloads", "pypi", "gplpy") / "gplpy-2.0.tar.gz",
        "gplpy-2.0",
        {
            "PKG-INFO": "Metadata-Version: 2.1\nName: gplpy\nVersion: 2.0\nLicense-Expression: GPL-3.0-only\n",
            "gplpy/x.py": _code("gpl"),
        },
    )
    # a package name the split rule sends to validation (checked below)
    _tar(
        package_dir(cache / "downloads", "pypi", "valpkg53") / "valpkg53-0.1.tar.gz",
        "valpkg53-0.1",
        {
            "PKG-INFO": mit.format(n="valpkg53").replace("Version: 1.0", "Version: 0.1"),
            "valpkg53/a.py": _code("val"),
            "valpkg53/b.py": _code("core"),  # duplicates a train file: dropped from validation
        },
    )
    _tar(
        package_dir(cache / "downloads", "npm", "goodjs") / "goodjs-3.1.0.tgz",
        "package",
        {
            "package.json": json.dumps({"name": "goodjs", "version": "3.1.0", "license": "ISC"}),
            "lib/index.js": _code("js").replace("def ", "function ").replace(":\n", " {\n").replace("\n\n", "\n}\n"),
            "lib/index.d.ts": "export declare function js_0(value: number, scale: number): number;\n" * 3,
            "dist/bundle.js": _code("bundle"),
        },
    )
    go = "package thing\n\n" + "".join(f"func F{i}(a int) int {{\n\treturn a * {i}\n}}\n\n" for i in range(30))
    prefix = "usr/share/gocode/src/example.org/thing/"
    _deb(
        cache,
        "golang-example-thing-dev",
        "1.2-1",
        {
            prefix + "thing.go": go,
            prefix + "gpl/part.go": go.replace("F", "G"),  # covered by a GPL stanza
            "usr/share/doc/golang-example-thing-dev/copyright": DEP5,
        },
    )
    toml = base / "packages.toml"
    toml.write_text(
        'pypi = ["goodpy", "gplpy", "valpkg53", "notfetched"]\nnpm = ["goodjs"]\n'
        'debian = ["golang-example-thing-dev"]\n'
    )
    # a package that is not in the cache must not reach the network here: its failure is already recorded
    nf = package_dir(cache / "downloads", "pypi", "notfetched")
    nf.mkdir(parents=True)
    (nf / "FAILED").write_text("pip download failed (1): no sdist\n")
    opts = corpus_v2.BuildOptions(out, cache, packages=toml, workers=1)
    report = corpus_v2.build(opts)
    return out, cache, opts, report


def _manifest(out: Path) -> dict[str, corpus_v2.ManifestEntry]:
    return {e.source_path: e for e in corpus_v2.read_manifest(out / corpus_v2.MANIFEST_NAME)}


def test_kept_files_and_why_others_were_dropped(built):
    out, _, _, report = built
    m = _manifest(out)
    assert set(m) == {"goodpy/core.py", "scripts/run.sh", "valpkg53/a.py", "lib/index.js", prefix_go()}
    assert m["goodpy/core.py"].language == "python" and m["scripts/run.sh"].language == "shell"
    assert m["lib/index.js"].license == "ISC" and m[prefix_go()].license == "MIT"
    drops = report["dropped_files"]
    assert drops["duplicate-exact"] == 3  # core_copy.py, valpkg53/b.py, the held-out copy
    assert drops["duplicate-near"] == 1  # core_edit.py
    assert drops["vendored"] == 2 and drops["generated"] == 2 and drops["data"] == 1 and drops["licence"] == 1
    assert report["dedup"]["dropped_as_copies_of_heldout_sources"] == 1
    status = {p["name"]: p["status"] for p in report["packages"]}
    assert status["gplpy"].startswith("licence") and status["notfetched"].startswith("not fetched")


def prefix_go() -> str:
    return "usr/share/gocode/src/example.org/thing/thing.go"


def test_split_is_by_package_and_validation_never_repeats_train(built):
    out, _, _, report = built
    assert corpus_v2.split_of("pypi", "valpkg53") == "validation"
    m = _manifest(out)
    assert {e.split for e in m.values()} == {"train", "validation"}
    for e in m.values():
        assert e.split == corpus_v2.split_of(e.ecosystem, e.package)
    assert report["counts"]["validation"]["python"]["files"] == 1


def test_manifest_records_versions_hashes_tokens_and_round_trips(built, tmp_path):
    out, _, _, _ = built
    entries = corpus_v2.read_manifest(out / corpus_v2.MANIFEST_NAME)
    by = {e.source_path: e for e in entries}
    assert by["goodpy/core.py"].version == "1.0" and by["lib/index.js"].version == "3.1.0"
    assert by[prefix_go()].version == "1.2-1" and by[prefix_go()].ecosystem == "debian"
    assert all(e.bytes > 0 and len(e.sha256) == 64 for e in entries)
    copy = tmp_path / "m.jsonl"
    corpus_v2.write_manifest(copy, entries)
    assert corpus_v2.read_manifest(copy) == entries


def test_load_yields_each_split_and_refuses_changed_files(built, tmp_path):
    out, _, _, _ = built
    train = list(corpus_v2.load(out, "train"))
    assert {f.language for f in train} == {"python", "shell", "javascript", "go"}
    assert [f.package for f in corpus_v2.load(out, "validation")] == ["valpkg53"]
    assert [f.language for f in corpus_v2.load(out, "train", languages=["go"])] == ["go"]
    # the manifest read once serves every split, with the same files as reading it per split
    entries = corpus_v2.read_manifest(out / corpus_v2.MANIFEST_NAME)
    assert list(corpus_v2.load(out, "train", entries=entries)) == train
    assert list(corpus_v2.load(out, "validation", entries=entries[:0])) == []
    core = next(f for f in train if f.path.endswith("goodpy/core.py"))
    assert core.text.startswith("def core_0(value, scale):")
    # a copy whose file changed is refused, not silently read
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / corpus_v2.FILES_DIR / core.path).write_text(core.text + "# changed\n")
    with pytest.raises(corpus_v2.CorpusMismatch, match="differs from the manifest"):
        list(corpus_v2.load(copy, "train"))
    with pytest.raises(ValueError):
        list(corpus_v2.load(out, "test"))


def test_rebuild_from_the_cache_gives_the_same_corpus(built):
    out, _, opts, _ = built
    before = (out / corpus_v2.MANIFEST_NAME).read_bytes()
    corpus_v2.build(opts)
    assert (out / corpus_v2.MANIFEST_NAME).read_bytes() == before
    report = json.loads((out / corpus_v2.BUILD_NAME).read_text())
    assert report["timings"]["total_s"] >= 0 and "build" not in report["packages"][0]


def test_heldout_packages_are_refused_in_any_packaging(tmp_path):
    heldout = corpus_v2.heldout_projects()
    assert corpus_v2.project_of("debian", "librust-semver-0.9-dev") in heldout
    assert corpus_v2.project_of("pypi", "Python_Slugify") in heldout
    assert corpus_v2.project_of("npm", "immer") in heldout
    assert corpus_v2.project_of("npm", "semver") not in heldout  # another project with the same short name
    toml = tmp_path / "p.toml"
    toml.write_text('pypi = ["requests"]\ndebian = ["librust-semver-0.9-dev"]\n')
    with pytest.raises(corpus_v2.CorpusError, match="held-out"):
        corpus_v2.load_packages(toml)


def test_committed_package_list_is_valid():
    specs = corpus_v2.load_packages()  # raises on a held-out package or a name listed twice
    assert {s.ecosystem for s in specs} == {"pypi", "npm", "debian"}
    assert len(specs) > 1000


def test_offline_build_uses_only_the_cache_and_records_what_it_skipped(built, tmp_path):
    out, cache, opts, _ = built
    toml = tmp_path / "more.toml"
    toml.write_text(opts.packages.read_text().replace('"notfetched"]', '"notfetched", "neverdownloaded"]'))
    report = corpus_v2.build(
        dataclasses.replace(opts, out=tmp_path / "v2", packages=toml, offline=True, started=time.time())
    )
    status = {p["name"]: p["status"] for p in report["packages"]}
    assert status["neverdownloaded"] == f"not fetched: {corpus_fetch.OUT_OF_TIME}"
    assert not (corpus_fetch.package_dir(cache / "downloads", "pypi", "neverdownloaded") / "FAILED").exists()
    assert status["goodpy"] == "ok"
    # the same cached packages give the same files
    assert (tmp_path / "v2" / corpus_v2.MANIFEST_NAME).read_bytes() == (out / corpus_v2.MANIFEST_NAME).read_bytes()
