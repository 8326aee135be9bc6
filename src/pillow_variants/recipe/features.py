"""Feature report: what a variant keeps, removes or changes of Pillow, against a baseline recipe.

The data is the recipes' ``[features]`` tables (state, reason, Python modules). A variant
inherits the baseline's table and overrides the entries its patch sets change, so comparing the
two resolved recipes tells a user exactly what they give up by installing the variant — the
question a nanoserver user asks before swapping the official wheel for ours.

Statuses, per feature, variant against baseline:

* ``kept``    — same state in both (an upstream-disabled feature stays "kept, disabled");
* ``removed`` — usable in the baseline, not in the variant (state ``removed``/``disabled``, or
  the variant does not list it);
* ``changed`` — still there, but behaves differently (state ``changed``);
* ``added``   — usable in the variant, not in the baseline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pillow_variants.errors import UserError
from pillow_variants.recipe.model import Feature, Recipe, load_recipe

Status = Literal["kept", "removed", "changed", "added"]
STATUSES: tuple[Status, ...] = ("kept", "removed", "changed", "added")
#: States in which the feature can be used (``changed`` works, differently).
_USABLE = ("enabled", "changed")


@dataclass(frozen=True)
class FeatureStatus:
    """One feature of the variant, compared with the baseline."""

    name: str
    status: Status
    #: The variant's state (None: the variant does not list the feature).
    state: str | None
    #: The baseline's state (None: the baseline does not list it).
    baseline_state: str | None
    reason: str = ""
    modules: list[str] = field(default_factory=list)
    #: Pillow test-suite patterns that exercise the feature (recipe data, see Feature.tests).
    tests: list[str] = field(default_factory=list)


def _status(variant: Feature | None, baseline: Feature | None) -> Status:
    if variant is None:
        return "removed"
    if variant.state == "changed":
        return "changed"
    if baseline is None:
        return "added" if variant.state in _USABLE else "kept"
    if variant.state == baseline.state:
        return "kept"
    usable, was_usable = variant.state in _USABLE, baseline.state in _USABLE
    if was_usable and not usable:
        return "removed"
    if usable and not was_usable:
        return "added"
    return "kept"  # e.g. disabled ↔ removed: unusable in both


def compare_features(variant: Recipe, baseline: Recipe) -> list[FeatureStatus]:
    """Every feature of either recipe, in the variant's order (baseline-only ones last)."""
    names = list(variant.features) + [n for n in baseline.features if n not in variant.features]
    out = []
    for name in names:
        v, b = variant.features.get(name), baseline.features.get(name)
        status = _status(v, b)
        if v is not None:
            reason = v.reason
        else:
            reason = f"not listed by recipe {variant.name}"
        out.append(
            FeatureStatus(
                name=name,
                status=status,
                state=v.state if v else None,
                baseline_state=b.state if b else None,
                reason=reason,
                modules=list((v or b).modules),  # type: ignore[union-attr]
                tests=list((v or b).tests),  # type: ignore[union-attr]
            )
        )
    return out


def resolve_baseline(variant: Recipe, against: str | Path | None) -> Recipe:
    """``--against`` if given, else the recipe the variant inherits from."""
    if against is not None:
        return load_recipe(against)
    if not variant.inherits:
        raise UserError(
            f"{variant.path}: the recipe inherits from nothing; give a baseline with --against"
        )
    return load_recipe(variant.path.parent / variant.inherits)


def feature_report(variant: Recipe, baseline: Recipe) -> dict[str, Any]:
    """The ``features --json`` document (schemas/features-report.schema.json)."""
    features = compare_features(variant, baseline)
    return {
        "recipe": variant.name,
        "recipe_path": str(variant.path),
        "wheel_version": variant.wheel_version,
        "against": baseline.name,
        "against_path": str(baseline.path),
        "features": [asdict(f) for f in features],
        "summary": {s: sum(f.status == s for f in features) for s in STATUSES},
    }


def format_feature_report(report: dict[str, Any]) -> str:
    """Human-readable table: status, feature, states, modules, then the reason."""
    lines = [
        f"features of {report['recipe']} (Pillow {report['wheel_version']}) "
        f"against {report['against']}"
    ]
    for f in report["features"]:
        states = f["state"] or "-"
        if f["baseline_state"] != f["state"]:
            states = f"{f['baseline_state'] or '-'} → {states}"
        modules = ", ".join(f["modules"])
        line = f"  {f['status']:<8} {f['name']:<16} {states:<20} {modules}"
        lines.append(line.rstrip())
        if f["reason"] and f["status"] != "kept":
            lines.append(f"  {'':<8} {'':<16} {f['reason']}")
    counts = ", ".join(f"{n} {s}" for s, n in report["summary"].items() if n)
    lines.append(f"summary: {counts}")
    return "\n".join(lines)
