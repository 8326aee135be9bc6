"""Record classes for the ``audit`` command's path, instead of :mod:`dataclasses`.

The audit is benchmarked against ``delvewheel show`` (``scripts/bench_audit.py``), and on a
Pillow wheel most of its run is the interpreter starting and importing. Importing
:mod:`dataclasses` (which imports inspect, ast, dis and tokenize) and generating, with
``exec``, the methods of the 23 record types the audit uses cost ~20 ms of a ~150 ms run,
all of it on the main thread while the wheel is being inflated. A record here is a class
that names its fields in ``__slots__`` and assigns them in an explicit ``__init__``; this
base adds what a dataclass would: equality, a repr and a dict by field.

Modules off the audit's path (recipes, builds, releases) keep using dataclasses.
"""

from __future__ import annotations

from typing import Any


class Record:
    """Equality, repr and :meth:`as_dict` over the fields a subclass names in ``__slots__``.

    Not hashable (defining ``__eq__`` sets ``__hash__`` to None), like a dataclass.
    """

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def as_dict(self) -> dict[str, Any]:
        """The fields, in order, as a dict (shallow, unlike ``dataclasses.asdict``)."""
        return {name: getattr(self, name) for name in self.__slots__}


class FrozenRecord(Record):
    """A record whose fields nothing assigns after ``__init__``: hashable by value, like a
    frozen dataclass (assignment is not prevented: that would slow every ``__init__``)."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())
