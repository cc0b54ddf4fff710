"""What a conjunction of JSON Schema parts guarantees, and how single values fare against it.

:func:`facts_of` sums up what every document passing some parts satisfies (its possible types,
the tightest bounds, the required names, a finite set of values when there is one);
:func:`verdict` and :func:`accepts` tell whether a scalar passes a part or a schema, or that
they cannot tell (``None``), the way the ``jsonschema`` validator would decide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from schemas.json_schema_parts import (
    ATOMS,
    PropertyGroup,
    Side,
    atoms_of,
    canonical,
    is_number,
    search,
)

__all__ = ["Bound", "Facts", "accepts", "facts_of", "integer_bound", "verdict"]

_Check = tuple[str, "bool | None"]


@dataclass(frozen=True)
class Bound:
    """A numeric bound: ``value``, exclusive or not, and the keyword that set it."""

    value: float
    exclusive: bool
    keyword: str


@dataclass
class Facts:
    """What every document of a conjunction of writer parts is known to satisfy."""

    atoms: frozenset[str]
    values: list[Any] | None  # a finite superset of the documents, when one is known
    lower: Bound | None
    upper: Bound | None
    multiples: list[Any]
    min_length: int | None
    max_length: int | None
    patterns: frozenset[str]
    formats: frozenset[str]
    min_items: int | None
    max_items: int | None
    unique: bool
    min_properties: int | None
    max_properties: int | None
    required: frozenset[str]

    @property
    def empty(self) -> bool:
        """Whether no document passes the conjunction."""
        return not self.atoms or self.values == []


def bounds(part: dict[str, Any], inclusive: str, exclusive: str) -> list[Bound]:
    """The bounds ``part`` sets with the keywords ``inclusive`` and ``exclusive``."""
    found = []
    if is_number(part.get(inclusive)):
        found.append(Bound(part[inclusive], False, inclusive))
    if is_number(part.get(exclusive)):
        found.append(Bound(part[exclusive], True, exclusive))
    return found


def integer_bound(bound: Bound, *, lower: bool) -> Bound:
    """``bound`` as an inclusive bound on integers."""
    if lower:
        value = math.floor(bound.value) + 1 if bound.exclusive else math.ceil(bound.value)
    else:
        value = math.ceil(bound.value) - 1 if bound.exclusive else math.floor(bound.value)
    return Bound(value, False, bound.keyword)


def accepts(side: Side, schema: Any, value: Any, depth: int = 0) -> bool | None:
    """Whether the scalar ``value`` passes ``schema`` of ``side``; None when it cannot tell."""
    if depth > 16 or isinstance(value, (list, dict)):
        return None
    result: bool | None = True
    for part in side.flatten(schema, "reader"):
        passed = False if part is False else verdict(side, part, value, depth)[0]
        if passed is False:
            return False
        if passed is None:
            result = None
    return result


def verdict(
    side: Side, part: dict[str, Any], value: Any, depth: int = 0
) -> tuple[bool | None, str]:
    """Whether the scalar ``value`` passes ``part`` (None: cannot tell), and the keyword that
    decided it."""
    if isinstance(value, (list, dict)):
        return None, ""
    checks = [*_scalar_checks(side, part, value), *_logic_checks(side, part, value, depth)]
    for keyword, passed in checks:
        if passed is False:
            return False, keyword
    for keyword, passed in checks:
        if passed is None:
            return None, keyword
    return True, ""


def _scalar_checks(side: Side, part: dict[str, Any], value: Any) -> list[_Check]:
    checks: list[_Check] = []
    if "type" in part:
        allowed = atoms_of(part["type"])
        passed = _value_atom(value) in allowed
        if isinstance(value, float) and value.is_integer() and side.dialect == "draft-04":
            passed = "fraction" in allowed  # draft-04 does not call 2.0 an integer
        checks.append(("type", passed))
    if isinstance(part.get("enum"), list):
        checks.append(("enum", canonical(value) in {canonical(v) for v in part["enum"]}))
    if "const" in part:
        checks.append(("const", canonical(value) == canonical(part["const"])))
    if is_number(value):
        checks += _number_checks(part, value)
    if isinstance(value, str):
        if isinstance(part.get("minLength"), int):
            checks.append(("minLength", len(value) >= part["minLength"]))
        if isinstance(part.get("maxLength"), int):
            checks.append(("maxLength", len(value) <= part["maxLength"]))
        if isinstance(part.get("pattern"), str):
            checks.append(("pattern", search(part["pattern"], value)))
        if "format" in part:
            checks.append(("format", None))
    return checks


def _number_checks(part: dict[str, Any], value: float) -> list[_Check]:
    checks: list[_Check] = []
    for bound in bounds(part, "minimum", "exclusiveMinimum"):
        checks.append((bound.keyword, _beyond(value, bound, 1)))
    for bound in bounds(part, "maximum", "exclusiveMaximum"):
        checks.append((bound.keyword, _beyond(value, bound, -1)))
    step = part.get("multipleOf")
    if is_number(step):  # floats are left undecided: validators divide them inexactly
        exact = isinstance(value, int) and isinstance(step, int) and step > 0
        checks.append(("multipleOf", value % step == 0 if exact else None))
    return checks


def _logic_checks(side: Side, part: dict[str, Any], value: Any, depth: int) -> list[_Check]:
    checks: list[_Check] = []
    if "not" in part:
        inner = accepts(side, part["not"], value, depth + 1)
        checks.append(("not", None if inner is None else not inner))
    if isinstance(part.get("anyOf"), list):
        results = [accepts(side, s, value, depth + 1) for s in part["anyOf"]]
        checks.append(("anyOf", True if True in results else _unless_unknown(results)))
    if isinstance(part.get("oneOf"), list):
        results = [accepts(side, s, value, depth + 1) for s in part["oneOf"]]
        hits = results.count(True)
        checks.append(("oneOf", False if hits > 1 else _unless_unknown(results, hits == 1)))
    if "if" in part:
        condition = accepts(side, part["if"], value, depth + 1)
        branch = part.get("then", True) if condition else part.get("else", True)
        passed = None if condition is None else accepts(side, branch, value, depth + 1)
        checks.append(("if", passed))
    for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
        if keyword in part:
            checks.append((keyword, None))
    return checks


def facts_of(side: Side, parts: Sequence[dict[str, Any]]) -> Facts:
    """What documents passing every one of ``parts`` (of ``side``) are known to satisfy."""
    atoms = ATOMS
    values: list[Any] | None = None
    for part in parts:
        if "type" in part:
            atoms &= atoms_of(part["type"])
        for listed in ([part["const"]] if "const" in part else None, part.get("enum")):
            if isinstance(listed, list):
                keys = {canonical(v) for v in listed}
                known = listed if values is None else values
                values = [v for v in known if canonical(v) in keys]
    facts = Facts(
        atoms=atoms,
        values=values,
        lower=_tightest([b for p in parts for b in bounds(p, "minimum", "exclusiveMinimum")], 1),
        upper=_tightest([b for p in parts for b in bounds(p, "maximum", "exclusiveMaximum")], -1),
        multiples=[p["multipleOf"] for p in parts if is_number(p.get("multipleOf"))],
        min_length=_most(parts, "minLength", max),
        max_length=_most(parts, "maxLength", min),
        patterns=frozenset(p["pattern"] for p in parts if isinstance(p.get("pattern"), str)),
        formats=frozenset(p["format"] for p in parts if isinstance(p.get("format"), str)),
        min_items=_most(parts, "minItems", max),
        max_items=_most(parts, "maxItems", min),
        unique=any(p.get("uniqueItems") is True for p in parts),
        min_properties=_most(parts, "minProperties", max),
        max_properties=_most(parts, "maxProperties", min),
        required=frozenset(
            n for p in parts if isinstance(p.get("required"), list) for n in p["required"]
        ),
    )
    _rule_out(side, facts, parts)
    return facts


def _rule_out(side: Side, facts: Facts, parts: Sequence[dict[str, Any]]) -> None:
    """Drops the types and values the parts contradict."""
    impossible: set[str] = set()
    if facts.lower and facts.upper and _crossed(facts.lower, facts.upper):
        impossible |= {"integer", "fraction"}
    if _above(facts.min_length, facts.max_length):
        impossible.add("string")
    if _above(facts.min_items, facts.max_items):
        impossible.add("array")
    least = max(facts.min_properties or 0, len(facts.required))
    if _above(least, facts.max_properties) or any(
        _forbids(p, n) for p in parts for n in facts.required
    ):
        impossible.add("object")
    facts.atoms -= impossible
    if facts.values is None and facts.atoms <= {"null", "boolean"}:
        facts.values = [None, True, False]
    if facts.values is not None:
        facts.values = [
            v
            for v in facts.values
            if _value_atom(v) in facts.atoms
            and all(verdict(side, p, v)[0] is not False for p in parts)
        ]
        # A float such as 2.0 counts as "number" too: draft-04 does not call it an integer.
        floats = {"fraction"} if any(isinstance(v, float) for v in facts.values) else set()
        facts.atoms &= frozenset(_value_atom(v) for v in facts.values) | floats


def _value_atom(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "fraction"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _beyond(value: float, bound: Bound, sign: int) -> bool:
    """Whether ``value`` is on the allowed side of ``bound`` (``sign`` 1: a lower bound)."""
    if value == bound.value:
        return not bound.exclusive
    return value > bound.value if sign > 0 else value < bound.value


def _unless_unknown(results: list[bool | None], result: bool = False) -> bool | None:
    return None if None in results else result


def _crossed(low: Bound, high: Bound) -> bool:
    if low.value == high.value:
        return low.exclusive or high.exclusive
    return low.value > high.value


def _tightest(found: list[Bound], sign: int) -> Bound | None:
    """The highest lower bound (``sign`` 1) or the lowest upper bound (``sign`` -1)."""
    return max(found, key=lambda b: (sign * b.value, b.exclusive)) if found else None


def _most(parts: Sequence[dict[str, Any]], keyword: str, pick: Any) -> int | None:
    found = [p[keyword] for p in parts if is_number(p.get(keyword))]
    return pick(found) if found else None


def _above(low: float | None, high: float | None) -> bool:
    return low is not None and high is not None and low > high


def _forbids(part: dict[str, Any], name: str) -> bool:
    """Whether ``part`` plainly forbids the property ``name``."""
    group = PropertyGroup.of(part)
    if name in group.properties:
        return group.properties[name] is False
    return not group.patterns and group.other is False
