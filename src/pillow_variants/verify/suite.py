"""The ``suite`` rung: upstream Pillow's own test suite, run against our wheel and the official one.

Our smoke test checks what we thought of; Pillow's ``Tests/`` (in the pinned sdist) checks what
upstream thought of. Both wheels run the same suite in the same Wine, in python.org's embeddable
CPython with pytest unpacked into its site-packages (pure-Python wheels, as
:func:`ladder.install_wheel` installs any wheel), and the per-test outcomes (JUnit XML) are
compared. The official wheel's outcomes are cached by its sha256 (with the sdist's, pytest's
and the CPython's identity), so a second variant costs one run, not two.

Every difference must be explained by the recipe's feature report: a test of a feature the
variant *removes* (the feature's ``tests`` patterns in the recipe data) may fail, error or skip
in our run; any other difference -- a removed feature's test that now passes where upstream's
did not, or any test of a kept feature that changes -- fails the rung. One more explanation is
accepted and named separately (``not_in_wheel``): a feature whose modules are all missing from
the wheel (the build could not build it; its manifest says why), e.g. ``PIL._avif``.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.utils import parse_wheel_filename

from pillow_variants import _log
from pillow_variants.errors import UserError
from pillow_variants.hashing import bytes_sha256, file_sha256
from pillow_variants.recipe.features import FeatureStatus
from pillow_variants.recipe.model import Recipe
from pillow_variants.verify import ladder, wine

SCHEMA = "pillow-variants-verify-suite/1"  # schemas/verify-suite.schema.json
#: pytest for the Windows CPython (pure-Python wheels; its dependencies come along).
PYTEST_REQUIREMENT = "pytest>=8,<10"
#: Pillow's suite with per-test outcomes; no cache dir (the tree is thrown away anyway).
PYTEST_ARGS = ("-p", "no:cacheprovider", "-q", "-o", "junit_family=xunit1", "--junitxml=junit.xml")
DEFAULT_TIMEOUT = 5400.0
#: What the sdist contributes to the run: the suite and the conftest that loads its helpers.
SUITE_FILES = ("Tests", "conftest.py")
#: Installed as site-packages/sitecustomize.py. pytest's JUnit writer asks platform.node(), and
#: CPython >= 3.12 answers platform queries through WMI (_wmi), which aborts the process under
#: Wine 8 (propsys.VariantToString is unimplemented) -- after the whole run, losing the results.
#: Without _wmi, platform falls back to the registry, as on CPython 3.11.
SITECUSTOMIZE = (
    "# pillow-variants: no WMI under Wine (see pillow_variants.verify.suite)\n"
    "import sys\n"
    "sys.modules.setdefault('_wmi', None)\n"
)

Outcome = Literal["passed", "failed", "error", "skipped", "absent"]
#: Outcomes that a removed feature explains in our run (it is gone: its tests cannot pass).
REMOVED_OUTCOMES: frozenset[str] = frozenset({"failed", "error", "skipped", "absent"})
_SEVERITY = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


# --------------------------------------------------------------------------------------------
# Outcomes


def parse_junit(xml_text: str) -> dict[str, str]:
    """Per-test outcomes from pytest's JUnit XML (``junit_family=xunit1``): node id → one of
    passed/failed/error/skipped (an xfail is a skip there). A test reported twice (a teardown
    error after a pass) keeps its worst outcome."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise UserError(f"pytest's JUnit XML is unreadable ({exc})") from None
    outcomes: dict[str, str] = {}
    for case in root.iter("testcase"):
        nodeid = node_id(case.get("file"), case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        outcome = (
            "error"
            if "error" in tags
            else "failed"
            if "failure" in tags
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        old = outcomes.get(nodeid)
        if old is None or _SEVERITY[outcome] > _SEVERITY[old]:
            outcomes[nodeid] = outcome
    return outcomes


def node_id(file: str | None, classname: str, name: str) -> str:
    """pytest's node id (``Tests/test_x.py::Class::test[param]``) from a JUnit test case.

    xunit1 gives the file; the classname is the module's dotted path plus the class, if any.
    A file that fails to collect has no file attribute: its id is the dotted module path.
    """
    if not file:
        return f"{classname}::{name}" if classname else name
    file = file.replace("\\", "/")
    module = file[: -len(".py")].replace("/", ".") if file.endswith(".py") else file
    cls = classname[len(module) :].lstrip(".") if classname.startswith(module) else ""
    return "::".join(p for p in (file, cls.replace(".", "::"), name) if p)


def counts(outcomes: Mapping[str, str]) -> dict[str, int]:
    c = Counter(outcomes.values())
    return {k: c.get(k, 0) for k in ("passed", "failed", "error", "skipped")}


# --------------------------------------------------------------------------------------------
# Comparison and accounting


@dataclass(frozen=True)
class Difference:
    """One test whose outcome differs between the official wheel and ours."""

    test: str
    official: str
    ours: str
    #: The removed feature that explains it (None: unexplained).
    feature: str | None = None


@dataclass(frozen=True)
class Comparison:
    differences: list[Difference] = field(default_factory=list)

    @property
    def unaccounted(self) -> list[Difference]:
        return [d for d in self.differences if d.feature is None]

    @property
    def accounted_by(self) -> dict[str, int]:
        return dict(Counter(d.feature for d in self.differences if d.feature is not None))

    @property
    def passed(self) -> bool:
        return not self.unaccounted


def removed_feature_tests(features: Iterable[FeatureStatus]) -> dict[str, list[str]]:
    """feature → its test patterns, for the features the variant removes (the report's data)."""
    return {f.name: list(f.tests) for f in features if f.status == "removed" and f.tests}


def missing_feature_tests(wheel: Path, features: Iterable[FeatureStatus]) -> dict[str, list[str]]:
    """feature → its test patterns, for the features the report keeps but that this wheel does
    not contain: none of the feature's modules is in the wheel (e.g. ``PIL._avif`` when the
    build could not build libavif -- the build manifest says why). The wheel's file list is the
    evidence; a feature without modules is never counted missing."""
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = {}
    for f in features:
        if f.status == "removed" or not f.tests or not f.modules:
            continue
        if not any(_has_module(names, m) for m in f.modules):
            missing[f.name] = list(f.tests)
    return missing


def _has_module(names: set[str], module: str) -> bool:
    path = module.replace(".", "/")
    return any(
        n == f"{path}.py"
        or n.startswith(f"{path}/")
        or (n.startswith(f"{path}.") and n.endswith(".pyd"))
        for n in names
    )


def explaining_feature(test: str, removed: Mapping[str, Sequence[str]]) -> str | None:
    """The removed feature whose patterns match ``test`` (a pattern without ``::`` is a file:
    all its tests)."""
    for feature, patterns in removed.items():
        for pattern in patterns:
            glob = pattern if "::" in pattern else pattern + "::*"
            if fnmatch.fnmatchcase(test, glob):
                return feature
    return None


def compare(
    official: Mapping[str, str], ours: Mapping[str, str], removed: Mapping[str, Sequence[str]]
) -> Comparison:
    """Every test whose outcome differs, each explained by a removed feature or not.

    A removed feature explains a test of its own that fails, errors, skips or is absent in our
    run; nothing explains a changed test of a kept feature, nor a removed one that improved.
    """
    diffs = []
    for test in sorted(set(official) | set(ours)):
        theirs, mine = official.get(test, "absent"), ours.get(test, "absent")
        if theirs == mine:
            continue
        feature = explaining_feature(test, removed) if mine in REMOVED_OUTCOMES else None
        diffs.append(Difference(test, theirs, mine, feature))
    return Comparison(diffs)


# --------------------------------------------------------------------------------------------
# Running the suite under Wine


@dataclass(frozen=True)
class SuiteRun:
    """One wheel's run of the suite."""

    wheel: str
    sha256: str
    python: str
    cpython: str
    outcomes: dict[str, str]
    seconds: float
    returncode: int | None
    cached: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return counts(self.outcomes)


def pytest_wheels(python: str, cache_dir: Path) -> list[Path]:
    """pytest and its dependencies as pure-Python wheels for Windows CPython ``python`` (pip,
    the user's index configuration), cached."""
    dest = cache_dir / "suite" / f"pytest-cp{python.replace('.', '')}"
    wheels = sorted(dest.glob("*.whl"))
    if wheels:
        return wheels
    # into a fresh directory renamed into place: an interrupted download is never a cache hit
    tmp = Path(tempfile.mkdtemp(prefix=".pytest-", dir=_mkdir(dest.parent)))
    platform = ["--platform", "win_amd64", "--python-version", python]
    _pip_download(["--only-binary", ":all:", *platform], [PYTEST_REQUIREMENT], tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return sorted(dest.glob("*.whl"))


def official_wheel(version: str, python: str, cache_dir: Path) -> Path:
    """The official Pillow ``version`` wheel for CPython ``python`` on win_amd64 (pip), cached."""
    dest = _mkdir(cache_dir / "suite" / "official")
    tag = "cp" + python.replace(".", "")
    found = dest / f"pillow-{version}-{tag}-{tag}-win_amd64.whl"
    if not found.is_file():
        platform = ["--platform", "win_amd64", "--python-version", python]
        _pip_download(
            ["--no-deps", "--only-binary", ":all:", *platform], [f"pillow=={version}"], dest
        )
    if not found.is_file():
        raise UserError(f"pip did not fetch {found.name} (the official wheel to compare with)")
    return found


def _pip_download(options: list[str], requirements: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", *options, "-d", str(dest)]
    proc = subprocess.run([*cmd, *requirements], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"pip download {' '.join(requirements)} failed: {tail}")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def extract_suite(sdist: Path, dest: Path) -> Path:
    """Pillow's ``Tests/`` and root ``conftest.py`` from the sdist (a tree or an archive)."""
    from pillow_variants.sources.archives import extract_archive

    tree = sdist if sdist.is_dir() else extract_archive(sdist, dest / "sdist")
    if not (tree / "Tests").is_dir():
        raise UserError(f"{sdist}: no Tests/ directory -- not a Pillow sdist")
    return tree


def run_suite(
    wheel: Path,
    tree: Path,
    *,
    cache_dir: Path,
    select: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
    prepared: tuple[Path, str] | None = None,
) -> SuiteRun:
    """Install ``wheel`` and pytest into a fresh embeddable CPython, copy the suite from the
    sdist ``tree`` and run it under Wine; ``select`` are extra pytest arguments (``-k``, files).
    ``prepared``: the embeddable CPython already prepared (its signatures checked) and its exact
    version, as :func:`ladder.pristine_runtime` gives them.
    """
    python = ladder.wheel_python(wheel)
    pristine, cpython = prepared or ladder.pristine_runtime(python, cache_dir)
    prefix = ladder.wine_prefix(cache_dir)
    with tempfile.TemporaryDirectory(prefix="pv-suite-") as tmp:
        runtime = Path(tmp) / "python"
        site = ladder.prepare_runtime(pristine, runtime, python)
        for w in [wheel, *pytest_wheels(python, cache_dir)]:
            ladder.install_wheel(w, site)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
        for name in SUITE_FILES:
            src = tree / name
            if src.is_dir():
                shutil.copytree(src, runtime / name)
            elif src.is_file():
                shutil.copy2(src, runtime / name)
        targets = list(select) or ["Tests"]
        argv = ["python.exe", "-m", "pytest", *PYTEST_ARGS, *targets]
        result = wine.run(argv, prefix=prefix, cwd=runtime, timeout=timeout, on_line=on_line)
        junit = runtime / "junit.xml"
        if result.timed_out:
            raise UserError(f"{wheel.name}: the test suite timed out after {timeout:.0f} s")
        if not junit.is_file():
            tail = (result.stderr + result.stdout).strip().splitlines()[-3:]
            raise UserError(f"{wheel.name}: pytest wrote no results: {' | '.join(tail)}")
        outcomes = parse_junit(junit.read_text(encoding="utf-8", errors="replace"))
    return SuiteRun(
        wheel.name, file_sha256(wheel), python, cpython, outcomes, result.seconds, result.returncode
    )


def cached_run(
    wheel: Path,
    tree: Path,
    *,
    key: str,
    cache_dir: Path,
    select: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
    prepared: tuple[Path, str] | None = None,
) -> SuiteRun:
    """:func:`run_suite`, its outcomes cached under the wheel's sha256 plus ``key`` (what else
    decides them: the sdist, the selection, pytest's requirement)."""
    sha = file_sha256(wheel)
    sel = "all" if not select else _short_hash(json.dumps(list(select)))
    path = cache_dir / "suite" / "runs" / f"{sha}-{_short_hash(key)}-{sel}.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return SuiteRun(**{**data, "cached": True})
    run = run_suite(
        wheel,
        tree,
        cache_dir=cache_dir,
        select=select,
        timeout=timeout,
        on_line=on_line,
        prepared=prepared,
    )
    _mkdir(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(run)), encoding="utf-8")
    tmp.replace(path)
    return run


def _short_hash(text: str) -> str:
    return bytes_sha256(text.encode())[:16]


# --------------------------------------------------------------------------------------------
# The rung


@dataclass(frozen=True)
class SuiteVerdict:
    """Outcome of ``verify suite`` for one wheel."""

    ours: SuiteRun
    official: SuiteRun
    comparison: Comparison
    removed: dict[str, list[str]]
    #: Features the report keeps but this wheel lacks (see :func:`missing_feature_tests`).
    not_in_wheel: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.comparison.passed and bool(self.ours.outcomes)

    @property
    def reason(self) -> str:
        c, o = self.ours.counts, self.official.counts
        text = (
            f"{c['passed']} passed, {c['failed']} failed, {c['error']} errors, "
            f"{c['skipped']} skipped (official: {o['passed']}/{o['failed']}/{o['error']}/"
            f"{o['skipped']}); {len(self.comparison.differences)} differ"
        )
        if self.comparison.unaccounted:
            first = self.comparison.unaccounted[0]
            text += (
                f", {len(self.comparison.unaccounted)} unexplained by the feature report"
                f" (first: {first.test}: {first.official} → {first.ours})"
            )
        elif self.comparison.differences:
            by = ", ".join(
                f"{f}{' (not in this wheel)' if f in self.not_in_wheel else ''} {n}"
                for f, n in sorted(self.comparison.accounted_by.items())
            )
            text += f", all from removed features ({by})"
        return text

    def rung_result(self) -> dict[str, Any]:
        """What the manifest records: counts and the comparison (no per-test list of passes)."""
        return {
            "passed": self.passed,
            "python": self.ours.cpython,
            "tests": len(self.ours.outcomes),
            "counts": self.ours.counts,
            "official": {"sha256": self.official.sha256, "counts": self.official.counts},
            "differences": len(self.comparison.differences),
            "accounted_by": self.comparison.accounted_by,
            "not_in_wheel": sorted(self.not_in_wheel),
            "unaccounted": [asdict(d) for d in self.comparison.unaccounted[:50]],
            "reason": self.reason,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "wheel": self.ours.wheel,
            "sha256": self.ours.sha256,
            "python": self.ours.python,
            "cpython": self.ours.cpython,
            "passed": self.passed,
            "reason": self.reason,
            "seconds": self.ours.seconds,
            "counts": self.ours.counts,
            "official": {
                "wheel": self.official.wheel,
                "sha256": self.official.sha256,
                "counts": self.official.counts,
                "cached": self.official.cached,
                "seconds": self.official.seconds,
            },
            "removed_features": self.removed,
            "not_in_wheel": self.not_in_wheel,
            "accounted_by": self.comparison.accounted_by,
            "differences": [asdict(d) for d in self.comparison.differences],
        }


def verify_suite(
    wheel: Path,
    sdist: Path,
    features: Iterable[FeatureStatus],
    *,
    cache_dir: Path,
    official: Path | None = None,
    select: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> SuiteVerdict:
    """Run the suite on ``wheel`` and on the official wheel of its Pillow version (cached), and
    account for every difference with the removed ``features`` (a feature report's entries)."""
    wheel = wheel.resolve()
    if not wheel.is_file():
        raise UserError(f"{wheel}: no such wheel")
    version = str(parse_wheel_filename(wheel.name)[1].public)
    python = ladder.wheel_python(wheel)
    official = (official or official_wheel(version, python, cache_dir)).resolve()
    features = list(features)
    removed = removed_feature_tests(features)
    missing = missing_feature_tests(wheel, features)
    with tempfile.TemporaryDirectory(prefix="pv-sdist-") as tmp:
        tree = extract_suite(sdist, Path(tmp))
        key = f"{file_sha256(sdist) if sdist.is_file() else sdist}|{PYTEST_REQUIREMENT}|{python}"
        _log.progress(f"  suite: {wheel.name} and {official.name} (cached if run before)")
        # Downloads and signature checks once, before the runs: signify's Authenticode check
        # is not thread-safe (two at once failed with an asn1crypto error).
        pytest_wheels(python, cache_dir)
        prepared = ladder.pristine_runtime(python, cache_dir)
        # Both runs at once: each is one mostly single-threaded Wine process.
        with ThreadPoolExecutor(max_workers=2) as pool:
            theirs_f = pool.submit(
                cached_run, official, tree, key=key, cache_dir=cache_dir, select=select,
                timeout=timeout, prepared=prepared,
            )  # fmt: skip
            ours_f = pool.submit(
                run_suite, wheel, tree, cache_dir=cache_dir, select=select, timeout=timeout,
                on_line=on_line, prepared=prepared,
            )  # fmt: skip
            theirs, ours = theirs_f.result(), ours_f.result()
    comparison = compare(theirs.outcomes, ours.outcomes, {**removed, **missing})
    return SuiteVerdict(ours, theirs, comparison, removed, missing)


def verify_suite_for_recipe(
    wheel: Path,
    recipe: Recipe,
    *,
    cache_dir: Path,
    sdist: Path | None = None,
    official: Path | None = None,
    select: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
) -> SuiteVerdict:
    """:func:`verify_suite` with the recipe's pinned sdist (fetched and verified like a build's)
    and its feature report against the recipe it inherits from (none: nothing may differ)."""
    from pillow_variants.recipe.features import compare_features, resolve_baseline
    from pillow_variants.sources.fetch import fetch_source

    baseline = resolve_baseline(recipe, None) if recipe.inherits else recipe
    if sdist is None:
        sdist = fetch_source(recipe, "pillow", cache_dir=cache_dir).path
    return verify_suite(
        wheel,
        sdist,
        compare_features(recipe, baseline),
        cache_dir=cache_dir,
        official=official,
        select=select,
        timeout=timeout,
        on_line=on_line,
    )
