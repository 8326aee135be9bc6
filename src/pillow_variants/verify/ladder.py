"""Verification rungs of a built wheel, and the Wine rung itself.

A wheel's manifest records which verification rungs ran and what they found — never one that
did not run:

* ``strict``    — import tables checked against the target surface (audit, policy strict),
* ``surface``   — the same with the documented surface profile,
* ``wine``      — the wheel installed into python.org's embeddable CPython of the wheel's version,
  run under Wine, and the smoke test (``payload/smoke_test.py``) passed (this module),
* ``wine-nogui`` — the same with every DLL the strict policy names (GUI DLLs) disabled in Wine;
  the smoke test imports every extension module, so a GUI import fails it. (check_imports.py
  cannot run there: it needs ``_ctypes``, whose Wine ole32/oleaut32 import USER32/GDI32 --
  measured: ``import _ctypes`` fails with any one of user32/gdi32/win32u disabled.)
* ``suite``     — upstream Pillow's own test suite under Wine, compared test by test with the
  official wheel's run (:mod:`pillow_variants.verify.suite`),
* ``container`` — the smoke test passed inside a real Windows container (nanoserver).

Wine cannot prove nanoserver compatibility (Wine has GDI/USER32 and the -A functions); it proves
that the wheel loads and works in the official CPython for Windows, and — with
``--variant nanoserver`` — that the removed features fail the documented way. ``wine-nogui``
tells the two wheels apart: the official wheel's ``_imaging`` imports USER32/GDI32 and fails to
load there ("DLL load failed"), the nanoserver wheel must not notice.

Installing a wheel needs no pip: a wheel is a zip whose root goes into site-packages (its
``*.data/purelib|platlib`` too). The embeddable CPython ignores site-packages unless its
``pythonXY._pth`` lists it, so ``Lib\\site-packages`` and ``import site`` are added there.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, cast

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import Version

from pillow_variants import _log
from pillow_variants.audit.policy import load_policy
from pillow_variants.build import pysdk
from pillow_variants.errors import UserError
from pillow_variants.recipe.model import VARIANTS
from pillow_variants.verify import wine

RUNGS = ("strict", "surface", "wine", "wine-nogui", "suite", "container")
#: Variants that promise to work without the GUI DLLs, so ``wine-nogui`` runs for (and is
#: required of) them; upstream's wheels import USER32/GDI32 and fail it by design.
NOGUI_VARIANTS = ("nanoserver",)
SITE_DIR = "Lib\\site-packages"
DEFAULT_TIMEOUT = 900.0
INSTALLED_PTH = "Lib\r\nDLLs\r\n.\r\n"  # sys.path of a python.org installation, as a ._pth


# --------------------------------------------------------------------------------------------
# Manifest rungs


def record_rung(manifest: dict[str, Any], rung: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """Record the outcome of verification ``rung`` in ``manifest["rungs"][rung]``.

    ``result`` is the evidence of a run that happened: it must say ``passed`` (bool). A rung
    that did not run is never recorded (absent = not run); recording again replaces the entry.
    Returns the recorded entry.
    """
    if rung not in RUNGS:
        raise ValueError(f"unknown verification rung {rung!r} (known: {', '.join(RUNGS)})")
    if not isinstance(result.get("passed"), bool):
        raise ValueError(
            f"rung {rung!r}: result must state 'passed' (true/false) of a run that happened"
        )
    # No timestamp: the manifest is inside the wheel, and the same inputs must give the same bytes.
    entry = {"rung": rung, "passed": result["passed"]}
    entry.update({k: v for k, v in result.items() if k not in entry})
    manifest.setdefault("rungs", {})[rung] = entry
    return entry


def claimed_rungs(manifest: Mapping[str, Any]) -> list[str]:
    """The rungs the manifest can claim: recorded *and* passed, in ladder order."""
    recorded = manifest.get("rungs", {})
    return [r for r in RUNGS if recorded.get(r, {}).get("passed") is True]


# --------------------------------------------------------------------------------------------
# Wheel → embeddable CPython


def wheel_tags(wheel: Path) -> frozenset[Tag]:
    try:
        _name, _version, _build, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise UserError(f"{wheel.name}: not a wheel file name ({exc})") from None
    return tags


def wheel_python(wheel: Path, available: list[str] | None = None) -> str:
    """The embeddable CPython version ("3.13") to run ``wheel`` in.

    ``cpXY-cpXY-win_amd64`` needs exactly X.Y; ``cp3Y-abi3`` and ``py3-none`` take the newest
    available version that satisfies them. UserError if the wheel is not for win_amd64 or no
    pinned embeddable CPython fits.
    """
    available = sorted(available if available is not None else pysdk.embed_versions(), key=Version)
    tags = wheel_tags(wheel)
    platforms = {t.platform for t in tags}
    if not platforms & {"win_amd64", "any"}:
        got = ", ".join(sorted(platforms))
        raise UserError(f"{wheel.name}: platform {got}; Wine verification runs win_amd64 wheels")
    fits: list[str] = []
    for tag in tags:
        for py in available:
            nodot = "cp" + py.replace(".", "")
            if tag.interpreter == nodot and tag.abi in (nodot, "none", "abi3"):
                fits.append(py)
            elif tag.abi == "abi3" and tag.interpreter.startswith("cp3"):
                if Version(py) >= Version(f"3.{tag.interpreter[3:]}"):
                    fits.append(py)
            elif tag.abi == "none" and tag.interpreter in ("py3", "py2.py3"):
                fits.append(py)
    if not fits:
        wanted = ", ".join(sorted(f"{t.interpreter}-{t.abi}" for t in tags))
        have = ", ".join(available) or "none"
        raise UserError(f"{wheel.name}: no embeddable CPython for {wanted} (available: {have})")
    return max(fits, key=Version)


def edit_pth(text: str, site_dir: str = SITE_DIR) -> str:
    """The ``pythonXY._pth`` with ``site_dir`` listed and ``import site`` enabled (idempotent).

    The embeddable CPython's ._pth replaces sys.path entirely; the commented-out
    ``#import site`` line is python.org's own switch for site (and thus .pth files).
    """
    lines = [ln.rstrip("\r") for ln in text.splitlines()]
    if site_dir not in lines:
        insert_at = next(
            (i for i, ln in enumerate(lines) if ln.startswith("#") or "import" in ln), len(lines)
        )
        lines.insert(insert_at, site_dir)
    out, have_site = [], False
    for ln in lines:
        if ln.strip().lstrip("#").strip() == "import site":
            if have_site:
                continue
            ln, have_site = "import site", True
        out.append(ln)
    if not have_site:
        out.append("import site")
    return "\r\n".join(out) + "\r\n"


def install_wheel(wheel: Path, site_packages: Path) -> list[str]:
    """Unpack ``wheel`` into ``site_packages`` (purelib/platlib data included); the top-level
    names installed. Paths escaping the target are refused."""
    site_packages.mkdir(parents=True, exist_ok=True)
    top: set[str] = set()
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UserError(f"{wheel}: not a readable wheel ({exc})") from None
    with zf:
        for info in zf.infolist():
            rel = PurePosixPath(info.filename)
            if rel.is_absolute() or ".." in rel.parts or info.is_dir():
                if not info.is_dir():
                    raise UserError(f"{wheel.name}: unsafe path {info.filename!r}")
                continue
            parts = rel.parts
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts/headers/data are not needed to import the package
                parts = parts[2:]
            out = site_packages.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zf.read(info))
            top.add(parts[0])
    return sorted(top)


#: Programs the package runs inside a foreign (Windows) Python: shipped as package data in
#: ``pillow_variants/payload/`` (never imported here), so a wheel install has them too.
PAYLOAD = ("smoke_test.py", "check_imports.py", "speed_bench.py")


def payload_file(name: str) -> Path:
    """The installed copy of payload program ``name`` (one of :data:`PAYLOAD`).

    Looked up through :mod:`importlib.resources` -- never next to a source tree, which a
    ``pip install .`` does not have.
    """
    if name not in PAYLOAD:
        raise ValueError(f"unknown payload program {name!r} (known: {', '.join(PAYLOAD)})")
    path = Path(str(resources.files("pillow_variants") / "payload" / name))
    if not path.is_file():
        raise UserError(
            f"{name} is missing from the installed pillow_variants package ({path.parent});"
            " reinstall pillow-variants"
        )
    return path


def default_smoke_test() -> Path:
    """The smoke test shipped inside the package."""
    return payload_file("smoke_test.py")


# --------------------------------------------------------------------------------------------
# The Wine rungs


def gui_dlls(policy: str = "strict") -> list[str]:
    """The DLLs the ``wine-nogui`` rung disables: every DLL a DLL-level rule of ``policy`` names.

    Taken from the policy data, so the audit and this rung can never disagree. (A rule's
    ``dll_pattern`` -- API-set names -- cannot be listed; Wine resolves API sets to the DLLs
    named here anyway.)
    """
    return sorted({dll for rule in load_policy(policy).rules for dll in rule.dlls})


def prepare_runtime(pristine: Path, runtime: Path, python: str) -> Path:
    """Copy the embeddable CPython ``pristine`` to ``runtime`` with site-packages enabled;
    returns its site-packages directory."""
    shutil.copytree(pristine, runtime)
    pth = runtime / f"python{python.replace('.', '')}._pth"
    # an installed (non-embeddable) CPython has no ._pth: give it one with its own layout
    text = pth.read_text(encoding="utf-8") if pth.is_file() else INSTALLED_PTH
    pth.write_text(edit_pth(text), encoding="utf-8", newline="")
    return runtime / "Lib" / "site-packages"


class SmokeVerdict:
    """What every smoke-test verdict shares (the Wine rungs here, the container rung in
    :mod:`pillow_variants.verify.container`): its JSON form and the common part of the rung
    result it records. Subclasses are dataclasses declaring these fields."""

    cpython: str
    variant: str
    passed: bool
    reason: str
    smoke: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(cast(Any, self))

    def rung_base(self) -> dict[str, Any]:
        """passed, the exact CPython, the variant, the reason and the smoke test's counts."""
        return {
            "passed": self.passed,
            "python": self.cpython,
            "variant": self.variant,
            "reason": self.reason,
            "counts": (self.smoke or {}).get("counts", {}),
        }


@dataclass(frozen=True)
class WineVerdict(SmokeVerdict):
    """Outcome of ``verify wine`` for one wheel."""

    wheel: str
    python: str  # minor version of the embeddable CPython used
    cpython: str  # its exact version
    variant: str
    passed: bool
    returncode: int | None
    seconds: float
    reason: str  # one line: why it passed/failed
    smoke: dict[str, Any] | None  # the smoke test's final JSON line
    failed_checks: list[dict[str, str]] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    #: DLLs Wine was told not to load (``--no-gui``); empty for the plain wine rung.
    disabled_dlls: list[str] = field(default_factory=list)
    #: starts before the one judged that failed printing nothing (:data:`wine.LAUNCH_ATTEMPTS`)
    silent_starts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rung(self) -> str:
        """The rung this verdict is evidence for."""
        return "wine-nogui" if self.disabled_dlls else "wine"

    def rung_result(self) -> dict[str, Any]:
        """What :func:`record_rung` stores for :attr:`rung` (no raw log)."""
        result = {
            **self.rung_base(),
            "wine": (self.smoke or {}).get("wine"),
            "failed_checks": [c["name"] for c in self.failed_checks],
        }
        if self.disabled_dlls:
            result["disabled_dlls"] = self.disabled_dlls
        if self.silent_starts:
            result["silent_starts"] = self.silent_starts
        return result


def parse_smoke_output(stdout: str, key: str = "smoke") -> dict[str, Any] | None:
    """A payload program's verdict: the last stdout line that is a JSON object with ``key``."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict) and key in data:
                return data
    return None


def wine_prefix(cache_dir: Path | None = None) -> Path:
    """The Wine prefix every Wine run of the package shares: ``<cache>/wine/prefix``."""
    return pysdk.sdk_cache_dir(cache_dir).parent / "wine" / "prefix"


def runtime_python(wheel: Path, python_dir: Path | None = None) -> str:
    """The CPython minor version to run ``wheel`` in: of ``python_dir`` or a pinned one."""
    return wheel_python(wheel, [_python_of_dir(python_dir)] if python_dir else None)


def pristine_runtime(
    python: str, cache_dir: Path | None = None, python_dir: Path | None = None
) -> tuple[Path, str]:
    """The Windows CPython ``python`` (see :func:`runtime_python`): its pristine directory and
    exact version. ``python_dir`` replaces the pinned embeddable CPython with a given Windows
    CPython directory (signatures are checked all the same)."""
    if python_dir is not None:
        pysdk.check_signatures(python_dir)
        pristine = python_dir
    else:
        pristine = pysdk.embed_runtime(python, cache_dir)
    cpython = pysdk.python_dll_version(pristine / f"python{python.replace('.', '')}.dll")
    return pristine, cpython


def run_payload(
    wheel: Path,
    script: Path,
    args: Sequence[str] = (),
    *,
    python: str,
    pristine: Path,
    prefix: Path,
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
    files: Mapping[str, Path] | None = None,
    wine_bin: str | None = None,
    disabled_dlls: Sequence[str] = (),
    as_name: str | None = None,
) -> wine.WineRun:
    """Install ``wheel`` into a fresh copy of ``pristine`` and run ``python.exe script args``
    there under Wine (in the runtime's directory, removed afterwards). ``files``: name ->
    file copied next to python.exe first; ``as_name``: the name ``script`` is copied as."""
    with tempfile.TemporaryDirectory(prefix="pv-wine-") as tmp:
        runtime = Path(tmp) / "python"
        site = prepare_runtime(pristine, runtime, python)
        install_wheel(wheel, site)
        name = as_name or script.name
        shutil.copy2(script, runtime / name)
        for dest, src in (files or {}).items():
            shutil.copy2(src, runtime / dest)
        return wine.run(
            ["python.exe", name, *args],
            prefix=prefix,
            cwd=runtime,
            timeout=timeout,
            on_line=on_line,
            wine=wine_bin,
            disabled_dlls=disabled_dlls,
        )


def verify_wine(
    wheel: Path,
    *,
    variant: str = "upstream",
    python_dir: Path | None = None,
    cache_dir: Path | None = None,
    smoke_test: Path | None = None,
    font: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_line: Callable[[str], None] | None = None,
    no_gui: bool = False,
) -> WineVerdict:
    """Install ``wheel`` into a fresh copy of the embeddable CPython and run the smoke test
    under Wine. ``python_dir`` replaces the pinned embeddable CPython with a given Windows
    CPython directory (signatures are checked all the same). ``no_gui``: the ``wine-nogui``
    rung -- the strict policy's GUI DLLs disabled."""
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    wheel = wheel.resolve()
    if not wheel.is_file():
        raise UserError(f"{wheel}: no such wheel")
    python = runtime_python(wheel, python_dir)
    wine_bin = wine.find_wine()
    pristine, cpython = pristine_runtime(python, cache_dir, python_dir)
    disabled = gui_dlls() if no_gui else []
    args = ["--variant", variant]
    files: dict[str, Path] = {}
    if font is not None:
        files[f"font{font.suffix}"] = font
        args += ["--font", f"font{font.suffix}"]
    result = run_payload(
        wheel,
        smoke_test or default_smoke_test(),
        args,
        python=python,
        pristine=pristine,
        prefix=wine_prefix(cache_dir),
        timeout=timeout,
        on_line=on_line,
        files=files,
        wine_bin=wine_bin,
        disabled_dlls=disabled,
        as_name="smoke_test.py",
    )

    smoke = parse_smoke_output(result.stdout)
    failed = [c for c in (smoke or {}).get("checks", []) if c.get("status") == "fail"]
    if result.timed_out:
        passed, reason = False, f"timed out after {timeout:.0f} s"
    elif smoke is None:
        passed, reason = (
            False,
            f"no smoke-test verdict (exit {result.returncode}): " + _last_line(result),
        )
    else:
        passed = smoke["smoke"] == "pass" and result.returncode == 0 and not failed
        c = smoke.get("counts", {})
        reason = f"{c.get('pass', 0)} passed, {c.get('fail', 0)} failed, {c.get('skip', 0)} skipped"
        if failed:
            reason += "; first failure: " + f"{failed[0]['name']}: {failed[0]['detail']}"
    if result.silent_starts:
        first = result.silent_starts[0]
        reason += f" (started again: the first start exited {first['returncode']} printing nothing)"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return WineVerdict(
        wheel=wheel.name,
        python=python,
        cpython=cpython,
        variant=variant,
        passed=passed,
        returncode=result.returncode,
        seconds=result.seconds,
        reason=reason,
        smoke=smoke,
        failed_checks=failed,
        log_tail=[ln for ln in lines if not ln.startswith("{")][-20:],
        disabled_dlls=disabled,
        silent_starts=result.silent_starts,
    )


def _last_line(result: wine.WineRun) -> str:
    lines = (result.stderr + result.stdout).strip().splitlines()
    return lines[-1][:300] if lines else "(no output)"


def _python_of_dir(python_dir: Path) -> str:
    dlls = sorted(p.name for p in python_dir.glob("python3*.dll") if p.name != "python3.dll")
    if not dlls:
        raise UserError(f"{python_dir}: no pythonXY.dll — not a Windows CPython directory")
    digits = dlls[0][len("python") : -len(".dll")]
    return f"{digits[0]}.{digits[1:]}"


def progress_line(line: str) -> None:
    """Echo the smoke test's human lines to stderr (the JSON verdict is printed by the caller)."""
    if not line.startswith("{"):
        _log.progress(f"  {line}")
