"""Corpus v2's pure rules: licence allowlist, file filters, duplicate detection (tables, no network)."""

import pytest
from dcopilot.engine.training import corpus_dedup, corpus_filters, corpus_licenses

# --- licences ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("MIT", "MIT"),
        ("Expat", "MIT"),
        ("MIT OR Apache-2.0", "MIT"),
        ("(GPL-3.0-only OR Apache-2.0)", "Apache-2.0"),
        ("MIT AND ISC", "MIT AND ISC"),
        ("MIT AND GPL-2.0", None),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("BSD-3-clause~Google", "BSD-3-Clause"),
        ("BSD 2-Clause License", "BSD-2-Clause"),
        ("Apache License, Version 2.0", "Apache-2.0"),
        ("Python Software Foundation License", "PSF-2.0"),
        ("Zlib", "Zlib"),
        ("CC0-1.0", "CC0-1.0"),
        ("Unlicense", "Unlicense"),
        ("0BSD or MIT or Apache-2.0", "0BSD"),
        ("GPL-2+", None),
        ("LGPL-2.1", None),
        ("MPL-2.0", None),
        ("BSL-1.0", None),
        ("SEE LICENSE IN LICENSE.md", None),
        ("", None),
        ("UNLICENSED", None),  # npm's word for "not licensed to anyone", not the Unlicense
    ],
)
def test_licence_expressions(expr, expected):
    assert corpus_licenses.evaluate_expression(expr) == expected


@pytest.mark.parametrize(
    ("pkg_info", "ok", "spdx"),
    [
        ("License-Expression: MIT\n", True, "MIT"),
        ("License-Expression: GPL-3.0-or-later\nClassifier: License :: OSI Approved :: MIT License\n", False, ""),
        ("Classifier: License :: OSI Approved :: BSD License\n", True, "BSD"),
        (
            "Classifier: License :: OSI Approved :: Apache Software License\n"
            "Classifier: License :: OSI Approved :: BSD License\n",
            True,
            "Apache-2.0 OR BSD",
        ),
        (
            "Classifier: License :: OSI Approved :: MIT License\n"
            "Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n",
            False,
            "",
        ),
        ("License: MIT\n", True, "MIT"),
        ("License: UNKNOWN\n", False, ""),
        ("License: " + "Permission is hereby granted, free of charge, " * 4 + "\n", False, ""),
        ("Name: x\nVersion: 1\n", False, ""),
    ],
)
def test_pypi_licence_from_pkg_info(pkg_info, ok, spdx):
    lic = corpus_licenses.pypi_licence("Metadata-Version: 2.1\n" + pkg_info)
    assert (lic.ok, lic.spdx) == (ok, spdx)
    assert lic.ok or lic.reason


@pytest.mark.parametrize(
    ("package_json", "ok"),
    [
        ({"license": "MIT"}, True),
        ({"license": "(MIT OR GPL-2.0)"}, True),
        ({"license": "GPL-3.0"}, False),
        ({"license": {"type": "BSD-3-Clause"}}, True),
        ({"licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}, True),
        ({"licenses": [{"type": "MIT"}, {"type": "GPL-2.0"}]}, False),
        ({}, False),
    ],
)
def test_npm_licence(package_json, ok):
    assert corpus_licenses.npm_licence(package_json).ok is ok


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: thing

Files: *
Copyright: someone
License: Expat

Files: src/gpl_part/*
       tools/helper.go
Copyright: someone else
License: GPL-2+

Files: debian/*
Copyright: packager
License: GPL-2+

License: Expat
 Permission is hereby granted...
"""


def test_dep5_package_licence_and_per_file_rule():
    lic, stanzas = corpus_licenses.debian_licence(DEP5)
    assert (lic.ok, lic.spdx) == (True, "MIT")
    prefix = "usr/share/gocode/src/example.org/thing/"
    assert corpus_licenses.debian_file_allowed(prefix + "main.go", stanzas)
    assert not corpus_licenses.debian_file_allowed(prefix + "src/gpl_part/x.go", stanzas)
    assert not corpus_licenses.debian_file_allowed(prefix + "tools/helper.go", stanzas)
    assert corpus_licenses.debian_file_allowed(prefix + "tools/other.go", stanzas)


def test_dep5_rejections():
    gpl = DEP5.replace("Files: *\nCopyright: someone\nLicense: Expat", "Files: *\nCopyright: someone\nLicense: GPL-3")
    assert not corpus_licenses.debian_licence(gpl)[0].ok
    assert not corpus_licenses.debian_licence("This package was debianized by ... MIT licence")[0].ok
    only_packaging = DEP5.split("Files: *")[0] + "Files: debian/*\nLicense: MIT\n"
    assert not corpus_licenses.debian_licence(only_packaging)[0].ok


# --- file filters -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("pkg/core.py", None),
        ("vendor/github.com/x/y.go", "vendored"),
        ("src/third_party/zlib/inflate.c", "vendored"),
        ("node_modules/left-pad/index.js", "vendored"),
        ("dist/index.js", "vendored"),
        ("pkg/_vendor/six.py", "vendored"),
        ("src/testdata/input.go", "vendored"),
        ("proto/api_pb2.py", "generated"),
        ("api/service.pb.go", "generated"),
        ("lib/jquery.min.js", "generated"),
        ("build/lib/x.py", None),  # "build" is also a real package name (go/build)
    ],
)
def test_path_reasons(path, reason):
    assert corpus_filters.path_reason(path) == reason


CODE = "def add(a, b):\n    return a + b\n\n\nclass Thing:\n    value = 3\n" * 4


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (CODE, None),
        ("x = 1\n", "too-small"),
        ("# Code generated by protoc-gen-go. DO NOT EDIT.\n" + CODE, "generated"),
        ("// @generated by a tool\n" + CODE, "generated"),
        ("var a=1;" * 200 + "\n" + CODE, "minified"),
        ("TABLE = [\n" + "    0x1f, 0x2e, 0x3d, 0x4c, 0x5b, 0x6a,\n" * 60 + "]\n", "data"),
        ("DATA = [\n" + "    12345, 67890, 13579, 24680,\n" * 60 + "]\n", "data"),
        ("x" * 500_000, "too-large"),
    ],
)
def test_text_reasons(text, reason):
    assert corpus_filters.text_reason(text) == reason


def test_emitted_declarations_are_those_next_to_their_source():
    paths = ["lib/a.js", "lib/a.d.ts", "src/b.ts", "src/b.d.ts", "types/c.d.ts", "index.d.mts", "index.mjs"]
    assert corpus_filters.emitted_declarations(paths) == {"lib/a.d.ts", "src/b.d.ts", "index.d.mts"}


@pytest.mark.parametrize(
    ("path", "cpp", "language"),
    [
        ("a.py", False, "python"),
        ("a.tsx", False, "typescript"),
        ("a.d.ts", False, "typescript"),
        ("a.h", False, "c"),
        ("a.h", True, "cpp"),
        ("a.hpp", False, "cpp"),
        ("a.lua", False, "lua"),
        ("run.sh", False, "shell"),
        ("README.md", False, None),
        ("data.json", False, None),
    ],
)
def test_language_of(path, cpp, language):
    assert corpus_filters.language_of(path, cpp_package=cpp) == language


def test_decode_refuses_binary_and_normalizes_line_ends():
    assert corpus_filters.decode(b"\x00\x01abc") is None
    assert corpus_filters.decode(b"\xff\xfe bad") is None
    assert corpus_filters.decode(b"\xef\xbb\xbfa = 1\r\nb = 2\r\n") == "a = 1\nb = 2\n"


# --- duplicates -------------------------------------------------------------------------------------------------


def _module(seed: int, n: int = 80) -> str:
    return "".join(f"def f{seed}_{i}(x{i}, y):\n    return x{i} * {i + seed} + y\n\n" for i in range(n))


def test_exact_and_near_duplicates_are_found_first_copy_kept():
    base = _module(1)
    edited = base.replace("def f1_40(", "def renamed_40(").replace("* 41 +", "* 99 +")
    unrelated = _module(7)
    got = corpus_dedup.dedup([("a", base), ("b", base), ("c", edited), ("d", unrelated)])
    assert got["a"] is None and got["d"] is None
    assert got["b"] == ("exact", "a")
    assert got["c"] == ("near", "a")


def test_similarity_estimates_jaccard():
    a, b = _module(1), _module(1, n=40) + _module(2, n=40)
    sa, sb = set(corpus_dedup.shingle_hashes(a)), set(corpus_dedup.shingle_hashes(b))
    true = len(sa & sb) / len(sa | sb)
    est = corpus_dedup.similarity(corpus_dedup.signature(a), corpus_dedup.signature(b))
    assert 0.2 < true < 0.8
    assert abs(est - true) < 0.15  # 128 permutations: standard error about 0.04


def test_signature_is_deterministic_and_handles_tiny_texts():
    assert (corpus_dedup.signature(CODE) == corpus_dedup.signature(CODE)).all()
    assert corpus_dedup.signature("").shape == (corpus_dedup.NUM_PERM,)
    assert corpus_dedup.signature("x").shape == (corpus_dedup.NUM_PERM,)
