"""The whole pipeline for one recipe on the zig toolchain:

recipe → sources → patches → dependency builds → Windows CPython SDK → Pillow's extensions →
wheel → repair → audit (gate) → verify (Wine; Wine without GUI DLLs; with ``suite``, Pillow's
own test suite) → provenance (manifest + SBOM in the wheel).

Each stage is its own module; this one only chains them, records what each rung found in the
wheel's manifest (a rung that did not run is never recorded), and prints one summary table.
A CPython tag whose SDK cannot be prepared here is reported as skipped with the reason; one
whose import library was generated from the headers (no DLL reachable) is built and audited, and
its manifest's ``not_run`` says why the Wine rung did not run. A wheel that fails its audit gate
or the Wine smoke test makes the run fail.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pillow_variants import __version__
from pillow_variants._log import Progress, StepTime, summarize, timed
from pillow_variants._log import progress as progress_line
from pillow_variants.errors import (
    EXIT_BUILD,
    EXIT_FINDINGS,
    EXIT_OK,
    BuildError,
    ToolchainError,
    UserError,
)
from pillow_variants.recipe.model import Recipe

#: The rungs each audit policy mode runs (strict: rules; surface: loader simulation).
#: Steps whose failure is a build failure (exit 3), not a verification failure (exit 1).
BUILD_STEPS = ("sdk", "build", "repair")
AUDIT_RUNGS = {"strict": ("strict",), "surface": ("surface",), "both": ("strict", "surface")}


@dataclass
class WheelOutcome:
    """One CPython version's result, a row of the summary table."""

    python: str
    status: str = "skipped"  # built | failed | skipped
    reason: str = ""
    wheel: Path | None = None  # the finished wheel in the output directory
    #: The wheel's file name once it was built, kept when a later step fails (no file then).
    wheel_name: str = ""
    size: int = 0
    rungs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: The pipeline step that failed (sdk, build, repair, audit, wine, provenance), if one did.
    failed_step: str | None = None

    def verdict(self, rung: str) -> str:
        entry = self.rungs.get(rung)
        if entry is None:
            return "not run"
        return "pass" if entry["passed"] else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "status": self.status,
            "reason": self.reason,
            "wheel": str(self.wheel) if self.wheel else None,
            "wheel_name": self.wheel_name or None,
            "size": self.size,
            "rungs": self.rungs,
            "failed_step": self.failed_step,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class PipelineReport:
    recipe: str
    deps_prefix: Path | None
    outcomes: list[WheelOutcome]
    seconds: float = 0.0
    #: dependency → {"version": built, "recipe_version": pin (only when it differs)}
    dependencies: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """3 when a wheel did not build (compiler, backend, delvewheel), else 1 when a rung
        failed or nothing was built, else 0 (README: exit codes)."""
        built = [o for o in self.outcomes if o.status == "built"]
        failed = [o for o in self.outcomes if o.status == "failed"]
        if any(o.failed_step in BUILD_STEPS for o in failed):
            return EXIT_BUILD
        return EXIT_FINDINGS if failed or not built else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "pillow-variants-build-all/1",
            "tool": {"name": "pillow-variants", "version": __version__},
            "recipe": self.recipe,
            "deps_prefix": str(self.deps_prefix) if self.deps_prefix else None,
            "seconds": round(self.seconds, 1),
            "dependencies": self.dependencies,
            "wheels": [o.to_dict() for o in self.outcomes],
        }

    def summary(self) -> str:
        """What ``build all`` prints last: which dependencies are not the recipe's version
        (the trees built are named by what they are), then the table."""
        from pillow_variants.sources.fetch import version_label

        other = [
            f"{name} {version_label(v['version'], v['recipe_version'])}"
            for name, v in self.dependencies.items()
            if v.get("recipe_version")
        ]
        if not other:
            return self.table()
        note = "dependencies built at other versions than the recipe's: " + ", ".join(other)
        return note + "\n" + self.table()

    def table(self) -> str:
        rows = [("python", "wheel", "size", "strict", "surface", "wine", "wine-nogui", "status")]
        for o in self.outcomes:
            rows.append(
                (
                    o.python,
                    o.wheel_name or "-",
                    f"{o.size / 1e6:.1f} MB" if o.size else "-",
                    o.verdict("strict"),
                    o.verdict("surface"),
                    o.verdict("wine"),
                    o.verdict("wine-nogui"),
                    o.status + (f": {o.reason}" if o.reason else ""),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        lines = []
        for r in rows:
            cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
            lines.append("  ".join([*cells, r[-1]]))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Stages that only this module chains


def audit_rungs(recipe: Recipe, wheel: Path) -> dict[str, dict[str, Any]]:
    """Run the recipe's audit gate; one rung result per part of the policy that ran."""
    from pillow_variants.audit.engine import audit_paths

    results: dict[str, dict[str, Any]] = {}
    for rung in AUDIT_RUNGS[recipe.audit.policy]:
        report = audit_paths([wheel], surface=recipe.audit.surface, policy=rung)
        results[rung] = {
            "passed": report.exit_code == EXIT_OK,
            "surface": recipe.audit.surface if rung == "surface" else None,
            "policy": "strict" if rung == "strict" else None,
            "violations": report.errors,
            "warnings": report.warnings,
            "detail": _first_failures(report.to_dict()),
        }
        results[rung] = {k: v for k, v in results[rung].items() if v is not None}
    return results


def _first_failures(report: dict[str, Any], limit: int = 5) -> str:
    """A short line naming the first findings (the full report is the audit's job)."""
    found: list[str] = []
    for target in report.get("targets", []):
        for module in target.get("modules", []):
            for f in module.get("findings", []):
                if f.get("severity") == "error":
                    what = f"{f.get('dll')}!{f.get('function')}" if f.get("function") else f["dll"]
                    found.append(f"{module['path']}: {what} ({f.get('rule') or f.get('error')})")
    if not found:
        return "clean"
    more = f" (+{len(found) - limit} more)" if len(found) > limit else ""
    return "; ".join(found[:limit]) + more


def build_manifest(
    recipe: Recipe,
    python: str,
    deps_manifest: dict[str, Any],
    pillow_source: dict[str, Any],
    rungs: dict[str, Any],
    not_run: dict[str, str] | None = None,
    sdk: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance document embedded in the wheel (schemas/build-manifest.schema.json).

    ``not_run`` names rungs that did not run and why (never a pass); ``sdk`` says what the
    Windows CPython headers and import library were made from (e.g. generated from headers).
    """
    from pillow_variants.sources.patches import read_patch

    sources = {"pillow": pillow_source}
    for name, entry in deps_manifest.get("dependencies", {}).items():
        if entry.get("source"):
            sources[name] = entry["source"]
    patches = {
        comp: [read_patch(p).to_dict() for p in recipe.patch_files(comp)] for comp in recipe.patches
    }
    return {
        "format_version": 1,
        "tool": {"name": "pillow-variants", "version": __version__},
        "recipe": {
            "name": recipe.name,
            "wheel_version": recipe.wheel_version,
            "python": python,
            "config_settings": recipe.pillow.config_settings,
            "audit": {"surface": recipe.audit.surface, "policy": recipe.audit.policy},
        },
        "sources": sources,
        "patches": patches,
        "toolchain": deps_manifest.get("toolchain", {}),
        "dependencies": {
            name: {
                k: entry.get(k)
                for k in ("version", "recipe_version", "in_wheel", "options", "reason", "skipped")
                if entry.get(k) is not None
            }
            for name, entry in deps_manifest.get("dependencies", {}).items()
        },
        "rungs": rungs,
        **({"not_run": not_run} if not_run else {}),
        **({"python_sdk": sdk} if sdk else {}),
    }


# --------------------------------------------------------------------------------------------
# The run


def build_all(
    recipe: Recipe,
    *,
    pythons: list[str] | None = None,
    out_dir: Path = Path("dist"),
    deps_prefix: Path | None = None,
    overrides: dict[str, Path] | None = None,
    cache_dir: Path | None = None,
    allow_unpinned: bool = False,
    jobs: int = 2,
    wine: bool = True,
    suite: bool = False,
    progress: Progress = progress_line,
) -> PipelineReport:
    """Run every stage for each CPython version of the recipe (or ``pythons``). ``suite``
    adds the suite rung (Pillow's own tests under Wine, minutes per wheel: not by default)."""
    import json

    from pillow_variants import wheeltools
    from pillow_variants.build import pillow, pysdk, repair
    from pillow_variants.build.deps import DepsBuilder
    from pillow_variants.release.sbom import build_sbom
    from pillow_variants.sources import fetch
    from pillow_variants.toolchains import get_toolchain
    from pillow_variants.verify import ladder
    from pillow_variants.verify import suite as test_suite

    started = time.monotonic()
    overrides = overrides or {}
    # Absolute paths: later stages run tools in other working directories (the source tree).
    cache_dir = (Path(cache_dir) if cache_dir else fetch.default_cache_dir()).resolve()
    out_dir = Path(out_dir).resolve()
    pythons = recipe.select_pythons(pythons)
    prefix = (deps_prefix or Path("build") / f"deps-{recipe.name}-zig").resolve()
    pillow_overrides = {k: v for k, v in overrides.items() if k == "pillow"}
    dep_overrides = {k: v for k, v in overrides.items() if k != "pillow"}

    progress(f"== {recipe.name}: dependencies (zig) → {prefix}")
    steps: list[StepTime] = []
    with timed("dependencies", steps, progress):
        deps_report = DepsBuilder(
            recipe,
            get_toolchain("zig"),
            prefix,
            cache_dir=cache_dir,
            overrides=dep_overrides,
            allow_unpinned=allow_unpinned,
            jobs=jobs,
        ).build()
    deps_manifest = json.loads(deps_report.manifest_path.read_text())
    versions = {
        name: {k: entry[k] for k in ("version", "recipe_version") if k in entry}
        for name, entry in deps_manifest.get("dependencies", {}).items()
        if entry.get("status") != "not-built"
    }

    outcomes: list[WheelOutcome] = []
    for python in pythons:
        outcome = WheelOutcome(python=python)
        outcomes.append(outcome)
        t0 = time.monotonic()
        tag = "cp" + python.replace(".", "")  # step names in the timing lines
        progress(f"== {recipe.name}: CPython {python} win_amd64")
        try:
            with timed(f"{tag} sdk", steps, progress):
                sdk = pysdk.prepare_sdk(python, cache_dir=cache_dir)
        except (ToolchainError, BuildError) as exc:  # our tools failed: not about this machine
            outcome.status, outcome.reason = "failed", f"Windows CPython SDK: {exc}"
            outcome.failed_step = "sdk"
            progress(f"  failed: {outcome.reason}")
            continue
        except UserError as exc:
            outcome.reason = f"no Windows CPython SDK here ({exc})"
            progress(f"  skipped: {outcome.reason}")
            continue
        rungs: dict[str, Any] = {}  # ladder.record_rung fills evidence["rungs"]
        evidence: dict[str, Any] = {"rungs": rungs}
        step = "build"
        try:
            with tempfile.TemporaryDirectory(prefix="pv-wheel-") as tmp:
                with timed(f"{tag} wheel", steps, progress):
                    built = pillow.run_wheel_build(
                        recipe,
                        python,
                        prefix,
                        sdk,
                        Path(tmp),
                        source_overrides=pillow_overrides,
                        cache_dir=cache_dir,
                        allow_unpinned=allow_unpinned,
                        jobs=jobs,
                        progress=progress,
                    )
                outcome.wheel_name, outcome.size = built.wheel.name, built.wheel.stat().st_size
                step = "repair"
                with timed(f"{tag} repair", steps, progress):
                    wheel = repair.repair_wheel(built.wheel, Path(tmp) / "repaired", progress)
                outcome.wheel_name, outcome.size = wheel.name, wheel.stat().st_size
                step = "audit"
                with timed(f"{tag} audit", steps, progress):
                    audited = audit_rungs(recipe, wheel)
                for rung, result in audited.items():
                    ladder.record_rung(evidence, rung, result)
                    progress(f"  audit {rung}: {'pass' if result['passed'] else 'FAIL'}")
                gate_ok = all(r["passed"] for r in rungs.values())
                not_run: dict[str, str] = {}
                if wine and not sdk.runtime:
                    not_run["wine"] = (
                        f"no Windows CPython {python} runtime here: {sdk.dll} is not reachable "
                        f"({sdk.sources['dlls'].get('reason', 'no DLL')}); the import library "
                        "was generated from the headers"
                    )
                    progress(f"  wine: not run ({not_run['wine']})")
                    if recipe.name in ladder.NOGUI_VARIANTS:
                        not_run["wine-nogui"] = not_run["wine"]
                elif wine and gate_ok and recipe.name in ladder.VARIANTS:
                    step = "wine"
                    with timed(f"{tag} wine", steps, progress):
                        verdict = ladder.verify_wine(
                            wheel, variant=recipe.name, cache_dir=cache_dir
                        )
                    ladder.record_rung(evidence, "wine", verdict.rung_result())
                    progress(f"  wine: {'pass' if verdict.passed else 'FAIL'} ({verdict.reason})")
                if wine and sdk.runtime and gate_ok and recipe.name in ladder.NOGUI_VARIANTS:
                    step = "wine-nogui"
                    verdict = ladder.verify_wine(
                        wheel, variant=recipe.name, cache_dir=cache_dir, no_gui=True
                    )
                    ladder.record_rung(evidence, "wine-nogui", verdict.rung_result())
                    progress(
                        f"  wine-nogui: {'pass' if verdict.passed else 'FAIL'} ({verdict.reason})"
                    )
                if suite and wine and sdk.runtime and gate_ok:
                    step = "suite"
                    ran = test_suite.verify_suite_for_recipe(
                        wheel, recipe, cache_dir=cache_dir, sdist=pillow_overrides.get("pillow")
                    )
                    ladder.record_rung(evidence, "suite", ran.rung_result())
                    progress(f"  suite: {'pass' if ran.passed else 'FAIL'} ({ran.reason})")
                step = "provenance"
                with timed(f"{tag} provenance", steps, progress):
                    manifest = build_manifest(
                        recipe,
                        python,
                        deps_manifest,
                        built.source,
                        rungs,
                        not_run,
                        {"dlls": sdk.sources.get("dlls"), "headers": sdk.sources.get("headers")},
                    )
                    out_dir.mkdir(parents=True, exist_ok=True)
                    final = wheeltools.embed_provenance(
                        wheel, manifest, build_sbom(recipe, manifest), out=out_dir / wheel.name
                    )
        except (UserError, OSError) as exc:
            # What ran before the failing step stays in the row: the rungs that passed, and
            # the wheel's name (the file itself was in the run's temporary directory).
            detail = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            outcome.status, outcome.failed_step = "failed", step
            outcome.reason = f"{step} failed: {detail}"
            outcome.rungs = rungs
            outcome.seconds = time.monotonic() - t0
            progress(f"  failed at step {step}: {detail}")
            continue
        outcome.wheel, outcome.wheel_name = final, final.name
        outcome.size, outcome.rungs = final.stat().st_size, rungs
        outcome.seconds = time.monotonic() - t0
        failed = [r for r, e in rungs.items() if not e["passed"]]
        if failed:
            outcome.status = "failed"
            wine_rungs = ("wine", "wine-nogui", "suite")
            outcome.failed_step = failed[0] if set(failed) <= set(wine_rungs) else "audit"
            outcome.reason = "rungs failed: " + ", ".join(failed)
        elif wine and not sdk.runtime:
            outcome.status = "built"
            outcome.reason = "wine not run: no runtime here (import library from headers)"
        elif wine and "wine" not in rungs:
            outcome.status = "built"
            outcome.reason = f"no Wine variant named {recipe.name!r}; smoke test not run"
        else:
            outcome.status = "built"
        progress(f"  {outcome.status}: {final}")
    progress(summarize(steps))
    return PipelineReport(recipe.name, prefix, outcomes, time.monotonic() - started, versions)
