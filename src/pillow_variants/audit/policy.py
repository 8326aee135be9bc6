"""Import policies: rules about which system imports a module may have, kept as JSON data.

A policy (``data/policies/<name>.json`` or a file) is independent of any surface profile: it
encodes what a nanoserver-friendly module avoids (GUI DLLs, -A functions, legacy heap), so a
wheel can be held to it even where nobody knows the exact export list of the target image.
Each rule has an id, a one-line reason and a suggested fix, which reports repeat verbatim.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pillow_variants._record import FrozenRecord
from pillow_variants.audit import DATA
from pillow_variants.errors import UserError
from pillow_variants.limits import loads_json

FORMAT = "pillow-variants-policy/1"


class PolicyError(UserError):
    """A policy file cannot be found or is malformed."""


def _compile(pattern: str | None, where: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"{where}: bad pattern {pattern!r}: {exc}") from None


class PolicyRule(FrozenRecord):
    """One rule: matches a whole DLL (``dlls``/``dll_pattern``) or functions by name."""

    __slots__ = (
        "id",
        "reason",
        "fix",
        "dlls",
        "dll_pattern",
        "function_pattern",
        "except_functions",
        "except_dll_pattern",
    )

    def __init__(
        self,
        id: str,  # noqa: A002 - the rule's id, as in the policy JSON
        reason: str,
        fix: str,
        dlls: frozenset[str],
        dll_pattern: re.Pattern[str] | None,
        function_pattern: re.Pattern[str] | None,
        except_functions: frozenset[str],
        except_dll_pattern: re.Pattern[str] | None,
    ) -> None:
        self.id = id
        self.reason = reason
        self.fix = fix
        self.dlls = dlls
        self.dll_pattern = dll_pattern
        self.function_pattern = function_pattern
        self.except_functions = except_functions
        self.except_dll_pattern = except_dll_pattern

    @property
    def dll_level(self) -> bool:
        return bool(self.dlls or self.dll_pattern)

    def matches(self, dll: str, function: str | None) -> bool:
        """``dll`` is the normalised (lower-case) DLL name, ``function`` None for ordinals."""
        if self.except_dll_pattern and self.except_dll_pattern.search(dll):
            return False
        if self.dll_level:
            return dll in self.dlls or bool(self.dll_pattern and self.dll_pattern.search(dll))
        if function is None or function in self.except_functions:
            return False
        return bool(self.function_pattern and self.function_pattern.search(function))

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "reason": self.reason, "fix": self.fix}


class Policy(FrozenRecord):
    """A loaded rule set."""

    __slots__ = ("name", "description", "rules")

    def __init__(self, name: str, description: str, rules: tuple[PolicyRule, ...]) -> None:
        self.name = name
        self.description = description
        self.rules = rules

    def check(self, dll: str, function: str | None) -> list[PolicyRule]:
        """The rules one imported function violates."""
        return [r for r in self.rules if r.matches(dll, function)]


def _rule(raw: dict[str, Any], where: str) -> PolicyRule:
    match = raw.get("match", {})
    return PolicyRule(
        id=str(raw["id"]),
        reason=str(raw["reason"]),
        fix=str(raw["fix"]),
        dlls=frozenset(d.lower() for d in match.get("dlls", ())),
        dll_pattern=_compile(match.get("dll_pattern"), where),
        function_pattern=_compile(match.get("function_pattern"), where),
        except_functions=frozenset(match.get("except_functions", ())),
        except_dll_pattern=_compile(match.get("except_dll_pattern"), where),
    )


@lru_cache(maxsize=4)
def load_policy(spec: str = "strict") -> Policy:
    """Load a policy by built-in name (``strict``) or from a JSON file path."""
    path = Path(spec)
    if not (spec.endswith(".json") or path.exists()):
        path = DATA / "policies" / f"{spec}.json"
    try:
        raw = loads_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"unknown policy {spec!r}") from None
    except (OSError, ValueError) as exc:  # also UTF-8, NaN/Infinity, nesting
        raise PolicyError(f"{path}: cannot read policy ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise PolicyError(f"{path}: not a policy file (format must be {FORMAT!r})")
    try:
        rules = tuple(_rule(r, str(path)) for r in raw["rules"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise PolicyError(f"{path}: malformed rule ({type(exc).__name__}: {exc})") from None
    return Policy(str(raw.get("name", path.stem)), str(raw.get("description", "")), rules)
