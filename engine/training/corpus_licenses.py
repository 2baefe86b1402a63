"""Which registry packages corpus v2 may use: permissive licences only, read from each package's own metadata.

A package is accepted only when its metadata names its licence and every licence it names is on the allowlist
(for "A OR B" one permissive alternative is enough, for "A AND B" both must be). Anything copyleft, proprietary
or unrecognised rejects the package: an unknown licence is treated like a forbidden one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SPDX ids (and the spellings PyPI classifiers and Debian copyright files use), lower-cased, mapped to one SPDX id.
ALLOWED = {
    "mit": "MIT",
    "expat": "MIT",  # Debian's name for the MIT licence
    "mit-0": "MIT-0",
    "mit license": "MIT",
    "go": "BSD-3-Clause",  # Debian's name for the Go project's BSD-style licence
    "bsd": "BSD",
    "bsd license": "BSD",
    "0bsd": "0BSD",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "apache-2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "isc": "ISC",
    "isc license": "ISC",
    "isc license (iscl)": "ISC",
    "psf": "PSF-2.0",
    "psf-2.0": "PSF-2.0",
    "python-2.0": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "zlib": "Zlib",
    "zlib/libpng license": "Zlib",
    "cc0": "CC0-1.0",
    "cc0-1.0": "CC0-1.0",
    "cc0 1.0 universal (cc0 1.0) public domain dedication": "CC0-1.0",
    "unlicense": "Unlicense",
    "the unlicense (unlicense)": "Unlicense",
}


@dataclass(frozen=True)
class Licence:
    ok: bool
    spdx: str  # the permissive licence the corpus uses the package under ("" when rejected)
    evidence: str  # what the metadata said, verbatim (shortened)
    reason: str = ""  # why it was rejected


def normalize(name: str) -> str | None:
    """One licence name -> its SPDX id when it is on the allowlist, else None."""
    key = re.sub(r"\s+", " ", name.strip().strip("()").strip()).lower()
    # Debian marks a licence text's variant with "~holder" (BSD-3-clause~Google): the same terms, another owner
    key = key.split("~", 1)[0]
    key = key.removesuffix(" license").strip() if key not in ALLOWED else key
    if key in ALLOWED:
        return ALLOWED[key]
    # Debian writes "BSD-3-clause", PyPI "BSD 3-Clause License", npm "BSD-3-Clause"
    m = re.fullmatch(r"(?:new |simplified |modified )?bsd[- ]?([0234])[- ]clause(?: license)?", key)
    if m:
        return "0BSD" if m.group(1) == "0" else f"BSD-{m.group(1)}-Clause"
    if re.fullmatch(r"apache(?: license)?[ ,-]*(?:version )?2(?:\.0)?", key):
        return "Apache-2.0"
    return None


def _split_top(expr: str, op: str) -> list[str]:
    """Split an SPDX-like expression on `op` outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    tokens = re.split(r"(\(|\)|\s+)", expr)
    for t in tokens:
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        if depth == 0 and t.strip().lower() == op:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(t)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def evaluate_expression(expr: str) -> str | None:
    """SPDX-style "A OR (B AND C)" -> the permissive choice as a string, or None when no choice is permissive.

    Debian separates alternatives with "or" and joins with "and", as SPDX does.
    """
    expr = expr.strip()
    whole = normalize(expr)
    if whole:
        return whole
    while expr.startswith("(") and expr.endswith(")") and _balanced(expr[1:-1]):
        expr = expr[1:-1].strip()
    if not expr:
        return None
    alternatives = _split_top(expr, "or")
    if len(alternatives) > 1:
        for alt in alternatives:
            got = evaluate_expression(alt)
            if got:
                return got
        return None
    conjuncts = _split_top(expr, "and")
    if len(conjuncts) > 1:
        got_all = [evaluate_expression(c) for c in conjuncts if c.strip()]
        return " AND ".join(g for g in got_all if g) if got_all and all(got_all) else None
    return normalize(expr)


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def _short(s: str, n: int = 200) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def pypi_licence(pkg_info: str) -> Licence:
    """From an sdist's PKG-INFO: License-Expression first (metadata 2.4), then the licence classifiers, then a
    short License field (long ones are the licence's full text, which we do not try to recognise)."""
    fields = re.findall(r"^(License-Expression|License|Classifier): (.*)$", pkg_info, re.M)
    expression = [v for k, v in fields if k == "License-Expression"]
    classifiers = [v.split("::")[-1].strip() for k, v in fields if k == "Classifier" and v.startswith("License ::")]
    classifiers = [c for c in classifiers if c not in ("OSI Approved",)]
    field = [v for k, v in fields if k == "License" and v.strip() and v.strip().upper() != "UNKNOWN"]
    evidence = _short("; ".join(expression + classifiers + field))
    if expression:
        got = evaluate_expression(expression[0])
        return Licence(bool(got), got or "", evidence, "" if got else "License-Expression is not permissive")
    if classifiers:
        # several licence classifiers mean the authors offer each of them; all must be permissive so that no
        # part of the package is only available under another one
        names = [normalize(c) for c in classifiers]
        if all(names):
            return Licence(True, " OR ".join(sorted({n for n in names if n})), evidence)
        return Licence(False, "", evidence, "a licence classifier is not permissive")
    if field and len(field[0]) <= 80:
        got = evaluate_expression(field[0])
        return Licence(bool(got), got or "", evidence, "" if got else "License field is not permissive")
    return Licence(False, "", evidence, "no recognisable licence in PKG-INFO")


def npm_licence(package_json: dict) -> Licence:
    """From package.json: the SPDX `license` string (or the old `licenses` list: every entry must pass)."""
    lic = package_json.get("license")
    if isinstance(lic, dict):
        lic = lic.get("type")
    if isinstance(lic, str):
        got = evaluate_expression(lic)
        return Licence(bool(got), got or "", _short(lic), "" if got else "license is not permissive")
    old = package_json.get("licenses")
    if isinstance(old, list) and old:
        names = [str(x.get("type", "")) if isinstance(x, dict) else str(x) for x in old]
        got_all = [evaluate_expression(n) for n in names]
        if all(got_all):
            return Licence(True, " OR ".join(sorted({g for g in got_all if g})), _short(", ".join(names)))
        return Licence(False, "", _short(", ".join(names)), "a listed licence is not permissive")
    return Licence(False, "", "", "package.json names no licence")


@dataclass(frozen=True)
class Dep5Stanza:
    patterns: tuple[str, ...]
    licence: str  # the expression on the License: line
    regex: re.Pattern[str]


def _glob_to_suffix_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # DEP-5 globs are relative to the source tree, and a binary package installs that tree under a prefix
    # (usr/share/gocode/src/<module>/...), so a pattern matches at any path-component boundary. `*` crosses "/".
    alts = []
    for p in patterns:
        body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p.strip("/"))
        alts.append(body)
    return re.compile(r"(?:^|/)(?:" + "|".join(alts) + r")$")


def parse_dep5(text: str) -> list[Dep5Stanza] | None:
    """The Files stanzas of a machine-readable debian/copyright, in file order; None if it is not DEP-5."""
    if not re.search(r"^Format:\s*\S*copyright-format", text, re.M | re.I):
        return None
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", block, re.M)
        lic = re.search(r"^License:[ \t]*(.*)$", block, re.M)
        if not files or not lic:
            continue
        patterns = tuple(files.group(1).split())
        if patterns:
            stanzas.append(Dep5Stanza(patterns, lic.group(1).strip(), _glob_to_suffix_regex(patterns)))
    return stanzas


def _packaging_only(st: Dep5Stanza) -> bool:
    # debian/* is the packaging (often GPL); a binary package does not ship it as source
    return all(p.startswith("debian/") for p in st.patterns)


def debian_licence(copyright_text: str) -> tuple[Licence, list[Dep5Stanza]]:
    """The package's licence from its DEP-5 copyright (the `Files: *` stanza) plus the stanzas, so that
    `debian_file_allowed` can check each shipped file against the stanzas that cover it."""
    stanzas = parse_dep5(copyright_text)
    if stanzas is None:
        return Licence(False, "", "", "copyright file is not machine-readable (DEP-5)"), []
    main = [s for s in stanzas if "*" in s.patterns]
    relevant = [s for s in stanzas if not _packaging_only(s)]
    evidence = _short("; ".join(dict.fromkeys(s.licence for s in relevant)))
    if not relevant:
        return Licence(False, "", evidence, "no Files stanza outside debian/"), []
    if not main:
        # no catch-all stanza (rust-src lists its directories): files no stanza covers are dropped one by one
        main = relevant[:1]
    got = evaluate_expression(main[-1].licence)
    if not got:
        return Licence(False, "", evidence, f"main stanza is {main[-1].licence!r}"), stanzas
    return Licence(True, got, evidence), [s for s in relevant]


def debian_file_allowed(path: str, stanzas: list[Dep5Stanza]) -> bool:
    """A shipped file is allowed when the last DEP-5 stanza covering it (the DEP-5 rule) is permissive, and no
    other stanza covering it is copyleft either (a conservative reading of overlapping globs)."""
    covering = [s for s in stanzas if s.regex.search(path)]
    if not covering:
        return False
    return all(evaluate_expression(s.licence) for s in covering)
