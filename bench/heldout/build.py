"""Rebuild the held-out benchmark data from the package registries (PACKAGES.toml -> sources, manifest, cases).

    python bench/heldout/build.py                  # fetch, check licences and hashes, write the data files
    python bench/heldout/build.py --cache /tmp/hd  # keep the downloaded archives there

Fetches each package with the registry's own client (pip download, npm pack, apt-get download), checks that its
metadata names the licence PACKAGES.toml declares (a permissive one), copies the listed files and samples the cases
(bench/heldout/cases.py). Writes, next to this file:
- manifest.json: package, version, licence (declared and as the metadata says it), file, sha256, size;
- sources.json.gz: the files' text (the benchmark runs offline from it);
- cases.jsonl: the sampled cases.
When manifest.json already lists a file with another sha256, the registry served different content: the build
stops rather than silently change the benchmark (--update accepts the new content).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cases import sample_cases  # noqa: E402

PER_KIND = {"calibration": 20, "test": 30}
PERMISSIVE = ("MIT", "Expat", "BSD", "Apache", "ISC", "Zlib", "Unlicense", "0BSD")


class BuildError(RuntimeError):
    pass


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")


def fetch(pkg: dict, cache: Path) -> Path:
    """Download the package archive into `cache` (reused when present); returns its path."""
    eco, name, version = pkg["ecosystem"], pkg["name"], pkg["version"]
    if eco == "pypi":
        pattern = f"{re.sub(r'[-_.]+', '[-_.]', name)}-{re.escape(version)}.tar.gz"
        found = [p for p in cache.iterdir() if re.fullmatch(pattern, p.name, re.I)]
        if not found:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    f"{name}=={version}",
                    "-d",
                    str(cache),
                ],
                cache,
            )
            found = [p for p in cache.iterdir() if re.fullmatch(pattern, p.name, re.I)]
    elif eco == "npm":
        stem = name.lstrip("@").replace("/", "-")
        found = list(cache.glob(f"{stem}-{version}.tgz"))
        if not found:
            _run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(cache)], cache)
            found = list(cache.glob(f"{stem}-{version}.tgz"))
    elif eco == "debian":
        quoted = version.replace(":", "%3a")
        found = list(cache.glob(f"{name}_{quoted}_*.deb"))
        if not found:
            _run(["apt-get", "download", f"{name}={version}"], cache)
            found = list(cache.glob(f"{name}_{quoted}_*.deb"))
    else:
        raise BuildError(f"{name}: unknown ecosystem {eco!r}")
    if len(found) != 1:
        raise BuildError(f"{name} {version}: expected one archive in {cache}, found {[p.name for p in found]}")
    return found[0]


def members(archive: Path) -> dict[str, bytes]:
    """Files of an sdist, npm tarball or .deb, keyed by path without the archive's top directory."""
    deb = archive.suffix == ".deb"
    if deb:
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
        strip = lambda n: n[2:] if n.startswith("./") else n  # noqa: E731
    else:
        strip = lambda n: n.split("/", 1)[1] if "/" in n else n  # noqa: E731
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) if deb else tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None  # None only for members that are not regular files
                out[strip(m.name)] = f.read()
    return out


def licence_evidence(pkg: dict, files: dict[str, bytes]) -> str:
    """What the package's own metadata says its licence is."""
    eco = pkg["ecosystem"]
    if eco == "pypi":
        meta = files.get("PKG-INFO", b"").decode("utf-8", "replace")
        said = re.findall(r"^(?:License: (.+)|Classifier: License :: (.+))$", meta, re.M)
        return "; ".join(a or b for a, b in said)
    if eco == "npm":
        return str(json.loads(files["package.json"]).get("license", ""))
    copyright_ = files.get(f"usr/share/doc/{pkg['name']}/copyright", b"").decode("utf-8", "replace")
    stanza = re.search(r"^Files: \*[ \t]*$.*?^License: ([^\n]+)$", copyright_, re.M | re.S)
    return stanza.group(1).strip() if stanza else ""


def licence_ok(declared: str, evidence: str) -> bool:
    """The declared licence is permissive and the metadata names it (Debian calls MIT "Expat")."""
    alternatives = [a.strip() for a in re.split(r"\s+(?:OR|or)\s+", declared)]
    if not all(any(a.startswith(p) for p in PERMISSIVE) for a in alternatives):
        return False
    said = evidence.lower().replace("expat", "mit")
    return any(a.split("-")[0].lower() in said for a in alternatives)


def build(packages: list[dict], cache: Path, old_manifest: dict | None, update: bool):
    sources: dict[str, str] = {}
    meta: dict[str, tuple[str, str, str]] = {}
    old = {f["key"]: f["sha256"] for p in (old_manifest or {}).get("packages", []) for f in p["files"]}
    out_packages = []
    for pkg in packages:
        files = members(fetch(pkg, cache))
        evidence = licence_evidence(pkg, files)
        if not licence_ok(pkg["license"], evidence):
            raise BuildError(f"{pkg['name']}: declared licence {pkg['license']!r}, metadata says {evidence!r}")
        listed = []
        for path in pkg["files"]:
            if path not in files:
                raise BuildError(f"{pkg['name']} {pkg['version']}: no file {path}")
            data = files[path]
            digest = hashlib.sha256(data).hexdigest()
            key = f"{pkg['name']}@{pkg['version']}/{path}"
            if key in old and old[key] != digest and not update:
                raise BuildError(f"{key}: sha256 {digest} differs from the manifest's {old[key]} (use --update)")
            sources[key] = data.decode("utf-8").replace("\r\n", "\n")
            meta[key] = (pkg["language"], pkg["name"], sources[key])
            listed.append({"key": key, "path": path, "sha256": digest, "bytes": len(data)})
        out_packages.append(
            {
                **{k: pkg[k] for k in ("ecosystem", "name", "version", "language", "license")},
                "license_metadata": evidence,
                "files": listed,
            }
        )
    return sources, meta, {"version": 1, "packages": out_packages}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=Path, default=HERE / "PACKAGES.toml")
    ap.add_argument("--out", type=Path, default=HERE, help="where manifest.json, sources.json.gz, cases.jsonl go")
    ap.add_argument("--cache", type=Path, help="download directory (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--update", action="store_true", help="accept files whose sha256 changed in the registry")
    args = ap.parse_args()
    packages = tomllib.loads(args.packages.read_text())["package"]
    manifest_path = args.out / "manifest.json"
    old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        try:
            sources, meta, manifest = build(packages, cache, old, args.update)
        except (BuildError, subprocess.CalledProcessError, OSError) as e:
            print(f"build: {e}", file=sys.stderr)
            return 1
    cases = sample_cases(meta, PER_KIND, args.seed)
    manifest["seed"] = args.seed
    manifest["cases_per_language_and_kind"] = PER_KIND
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    blob = json.dumps(sources, sort_keys=True, ensure_ascii=False).encode()
    # mtime 0: the same input gives the same bytes
    with open(args.out / "sources.json.gz", "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(blob)
    with open(args.out / "cases.jsonl", "wb") as f:
        for c in cases:
            f.write(json.dumps(msgspec.to_builtins(c), ensure_ascii=False).encode() + b"\n")
    print(f"{len(sources)} files from {len(packages)} packages, {len(cases)} cases -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
