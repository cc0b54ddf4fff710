"""JSON Schema compatibility: does a reader schema accept every document a writer schema does?

The answer follows what the two schemas mean under their own draft (``$schema``; none means
draft-07, as for the codecs' fastjsonschema and for Confluent). The check passes only when it
can show that every document the writer allows passes the reader, so where it cannot tell
it errs towards "incompatible"; every reason names the place (``a.b``, ``a[0]``, ``a[]`` for
the items after the positional ones, ``a.*`` for other property names) and the keyword.

Both schemas are read as conjunctions of parts (``allOf`` members and local ``$ref``
targets are parts of their own, so order and duplicates do not matter); the writer's
``anyOf``/``oneOf``/``if`` are split into alternatives, each checked on its own. Then every
keyword of every reader part must follow from the writer's parts together:

* types and values: widening a type (``integer`` → ``number`` too), adding enum values,
  relaxing or removing bounds are safe; a finite writer (``enum``, ``const``) is checked value
  by value;
* objects, name by name: the reader's ``properties``, ``patternProperties`` and
  ``additionalProperties``/``unevaluatedProperties`` must accept whatever the writer allows
  under that name. Hence, as in Confluent's rules, a property added to an *open* content model
  is incompatible (old documents may hold that name with any value), while one added to a
  closed model, or one the old model's patterns or additional schema already covered, is not;
* arrays, position by position across ``items``/``prefixItems`` and
  ``additionalItems``/``items``/``unevaluatedItems``; ``contains`` with ``minContains`` and
  ``maxContains``; ``dependencies``/``dependentSchemas`` entries may go, not come or narrow;
* ``not`` may exclude less than before, never more; of a ``oneOf``, one alternative must accept
  the writer's documents and the others must be disjoint from them.

Remote ``$ref`` s are only taken to match the identical ``$ref``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.json_schema_parts import (
    ATOMS,
    InvalidSchemaError,
    PropertyGroup,
    Side,
    accepts_anything,
    array_view,
    atoms_of,
    canonical,
    is_number,
    patterns_disjoint,
)
from schemas.json_schema_values import (
    Bound,
    Facts,
    accepts,
    bounds,
    facts_of,
    integer_bound,
    verdict,
)

__all__ = ["json_problems"]

_MAX_STEPS = 20_000
_MAX_DEPTH = 64
_STRING = {"type": "string"}
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")


def json_problems(reader: Any, writer: Any) -> list[str]:
    """Why some document valid under ``writer`` may be invalid under ``reader``.

    >>> old = {"type": "object", "properties": {"a": {"type": "integer"}}}
    >>> json_problems({"type": "object", "properties": {"a": {"type": "number"}}}, old)
    []
    >>> json_problems({"type": "object", "properties": {"a": {"type": "string"}}}, old)
    ['at a: the writer allows type integer, the reader does not']
    """
    reader_side = Side(reader)
    dangling = reader_side.dangling_refs()
    if dangling:
        return [f"the reader's $ref {ref!r} does not resolve in the reader" for ref in dangling]
    checker = _Checker(reader_side, Side(writer), _Budget())
    try:
        return checker.check(reader, [writer], "")
    except InvalidSchemaError as err:
        return [f"not a JSON Schema: {err}"]
    except _TooComplexError as err:
        return [f"at {err.where}: the schemas are too complex to compare ({err.why})"]


class _TooComplexError(Exception):
    def __init__(self, where: str, why: str) -> None:
        super().__init__(why)
        self.where, self.why = where, why


@dataclass
class _Budget:
    """Work left, and the comparisons under way (for recursive schemas)."""

    steps: int = _MAX_STEPS
    active: dict[tuple[Any, ...], tuple[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Context:
    """One writer alternative: its parts, what they guarantee, and where in the document."""

    parts: tuple[Any, ...]
    facts: Facts
    path: str

    @property
    def where(self) -> str:
        return self.path or "the top level"

    def sub(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


class _Checker:
    def __init__(self, reader: Side, writer: Side, budget: _Budget) -> None:
        self.r, self.w, self.budget = reader, writer, budget
        self._same_roots = canonical(reader.root) == canonical(writer.root)
        self._same_dialect = reader.dialect == writer.dialect

    def swapped(self) -> _Checker:
        """A checker with the roles exchanged (for ``not`` and ``maxContains``)."""
        return _Checker(self.w, self.r, self.budget)

    def check(self, reader: Any, writers: Sequence[Any], path: str) -> list[str]:
        """Why a document passing every one of ``writers`` may fail ``reader``."""
        where = path or "the top level"
        if len(writers) == 1 and self._identical(reader, writers[0]):
            return []
        key = (id(self.r), id(reader), frozenset(map(id, writers)))
        if key in self.budget.active:  # a recursive schema: assume it for the nested documents
            if self.budget.active[key][0] == path:
                raise _TooComplexError(where, "a $ref cycle that does not descend")
            return []
        self.budget.steps -= 1
        if self.budget.steps < 0 or len(self.budget.active) > _MAX_DEPTH:
            raise _TooComplexError(where, "too many combinations or too deep")
        self.budget.active[key] = (path, (reader, writers))
        try:
            return self._check(reader, writers, path)
        finally:
            del self.budget.active[key]

    def _identical(self, reader: Any, writer: Any) -> bool:
        if reader is True or writer is False:
            return True
        if not self._same_dialect:
            return False
        text = canonical(reader)
        return text == canonical(writer) and (self._same_roots or '"$' not in text)

    def _check(self, reader: Any, writers: Sequence[Any], path: str) -> list[str]:
        r_parts = self.r.flatten(reader, "reader")
        if not r_parts:
            return []
        found: list[str] = []
        for branch in self.w.alternatives(writers):
            facts = facts_of(self.w, branch)
            if not facts.empty:
                found += self._conjunction(r_parts, _Context(branch, facts, path))
        return list(dict.fromkeys(found))

    def _conjunction(self, r_parts: tuple[Any, ...], ctx: _Context) -> list[str]:
        if r_parts == (False,):
            return [f"at {ctx.where}: the reader accepts nothing, the writer allows documents"]
        found: list[str] = []
        for part in r_parts:
            if ctx.facts.values is not None:
                verdicts = [(v, verdict(self.r, part, v)) for v in ctx.facts.values]
                if all(passed for _, (passed, _) in verdicts):
                    continue
                rejected = [(v, keyword) for v, (passed, keyword) in verdicts if passed is False]
                if rejected:
                    keyword = rejected[0][1]
                    shown = _show([v for v, k in rejected if k == keyword])
                    found.append(
                        f"at {ctx.where}: the reader's {keyword} rejects {shown}, "
                        "which the writer allows"
                    )
                    continue
            found += self._part(part, ctx)
        return found

    def _part(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        atoms = ctx.facts.atoms
        found = self._types(part, ctx) + self._values(part, ctx)
        if atoms & {"integer", "fraction"}:
            found += self._numbers(part, ctx)
        if "string" in atoms:
            found += self._strings(part, ctx)
        if "array" in atoms:
            found += self._arrays(part, ctx)
        if "object" in atoms:
            found += self._objects(part, ctx)
        return found + self._logic(part, ctx)

    # --- types and values ---------------------------------------------------------------

    def _types(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        if "type" not in part:
            return []
        allowed = atoms_of(part["type"])
        lost = ctx.facts.atoms - allowed
        if not lost:
            return []
        if ctx.facts.atoms == ATOMS:
            names = part["type"] if isinstance(part["type"], list) else [part["type"]]
            return [
                f"at {ctx.where}: the reader restricts the type to {sorted(names)}, "
                "the writer allowed any"
            ]
        return [
            f"at {ctx.where}: the writer allows type {name}, the reader does not"
            for name in _type_names(lost, ctx.facts.atoms)
        ]

    def _values(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found: list[str] = []
        for keyword, listed in (("const", [part.get("const")]), ("enum", part.get("enum"))):
            if keyword not in part or not isinstance(listed, list):
                continue
            if ctx.facts.values is None:
                found.append(
                    f"at {ctx.where}: the reader adds {keyword} {_show(listed)}, "
                    "the writer did not restrict the values"
                )
                continue
            keys = {canonical(v) for v in listed}
            lost = [v for v in ctx.facts.values if canonical(v) not in keys]
            if lost:
                found.append(f"at {ctx.where}: the reader's {keyword} drops {_show(lost)}")
        return found

    def _numbers(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found: list[str] = []
        integers = "fraction" not in ctx.facts.atoms
        lows = [(b, True) for b in bounds(part, "minimum", "exclusiveMinimum")]
        highs = [(b, False) for b in bounds(part, "maximum", "exclusiveMaximum")]
        for bound, lower in lows + highs:
            held = ctx.facts.lower if lower else ctx.facts.upper
            if held is not None and integers:
                held = integer_bound(held, lower=lower)
            if not _within(held, bound, lower=lower):
                writer = f"{held.keyword} {held.value}" if held else "none"
                found.append(
                    f"at {ctx.where}: the reader tightens {bound.keyword} to {bound.value} "
                    f"(writer: {writer})"
                )
        step = part.get("multipleOf")
        if is_number(step) and not (
            any(_divides(step, m) for m in ctx.facts.multiples) or (integers and step == 1)
        ):
            writer = ", ".join(map(str, ctx.facts.multiples)) or "none"
            found.append(f"at {ctx.where}: the reader adds multipleOf {step} (writer: {writer})")
        return found

    def _strings(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found = _size_problems(part, ctx, "minLength", "maxLength", ctx.facts.min_length,
                               ctx.facts.max_length)  # fmt: skip
        for keyword, held in (("pattern", ctx.facts.patterns), ("format", ctx.facts.formats)):
            if keyword in part and part[keyword] not in held:
                found.append(
                    f"at {ctx.where}: the reader adds or changes {keyword} {part[keyword]!r}"
                )
        return found

    # --- arrays ---------------------------------------------------------------------------

    def _arrays(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found = _size_problems(part, ctx, "minItems", "maxItems", ctx.facts.min_items,
                               ctx.facts.max_items)  # fmt: skip
        if part.get("uniqueItems") is True and not (
            ctx.facts.unique or (ctx.facts.max_items is not None and ctx.facts.max_items <= 1)
        ):
            found.append(f"at {ctx.where}: the reader adds uniqueItems")
        return found + self._items(part, ctx) + self._contains(part, ctx)

    def _positions(self, ctx: _Context, size: int) -> tuple[list[list[Any]], list[Any] | None]:
        """The writer's schemas at each reachable position below ``size``, and for the rest
        (None when no longer array is allowed)."""
        views = [array_view(p, self.w.dialect) for p in ctx.parts]
        limit = ctx.facts.max_items
        positions: list[list[Any]] = []
        for index in range(size):
            at = [v[0][index] if index < len(v[0]) else v[1] for v in views]
            if (limit is not None and index >= limit) or False in at:
                return positions, None
            positions.append([s for s in at if s is not True])
        rest = [v[1] for v in views]
        if (limit is not None and size >= limit) or False in rest:
            return positions, None
        return positions, [s for s in rest if s is not True]

    def _items(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        prefix, rest, rest_keyword = array_view(part, self.r.dialect)
        if all(accepts_anything(s) for s in [*prefix, rest]):
            return []
        size = max([len(prefix)] + [len(array_view(p, self.w.dialect)[0]) for p in ctx.parts])
        positions, tail = self._positions(ctx, size)
        found: list[str] = []
        for index, writers in enumerate(positions):
            schema = prefix[index] if index < len(prefix) else rest
            found += self.check(schema, writers, f"{ctx.path}[{index}]")
        if tail is None or accepts_anything(rest):
            return found
        if rest is False:
            return [
                *found,
                f"at {ctx.where}: the reader allows at most {size} items ({rest_keyword}: "
                "false), the writer allows more",
            ]
        return found + self.check(rest, tail, f"{ctx.path}[]")

    def _contains(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        if "contains" not in part:
            return []
        wanted, found = part["contains"], []
        least = part.get("minContains", 1)
        if is_number(least) and least > 0 and not self._has_matches(wanted, least, ctx):
            found.append(
                f"at {ctx.where}: the reader requires {least} item(s) matching contains "
                "(contains/minContains), the writer does not guarantee them"
            )
        most = part.get("maxContains")
        if is_number(most) and not self._few_matches(wanted, most, ctx):
            found.append(
                f"at {ctx.where}: the reader allows at most {most} item(s) matching contains "
                "(maxContains), the writer allows more"
            )
        return found

    def _has_matches(self, wanted: Any, least: float, ctx: _Context) -> bool:
        for p in ctx.parts:
            held = p.get("minContains", 1)
            if (
                "contains" in p
                and is_number(held)
                and held >= least
                and not self.check(wanted, [p["contains"]], ctx.path)
            ):
                return True
        if (ctx.facts.min_items or 0) < least:
            return False
        size = max((len(array_view(p, self.w.dialect)[0]) for p in ctx.parts), default=0)
        positions, tail = self._positions(ctx, size)
        return not any(self.check(wanted, w, ctx.path) for w in positions) and not (
            tail is not None and self.check(wanted, tail, ctx.path)
        )

    def _few_matches(self, wanted: Any, most: float, ctx: _Context) -> bool:
        if ctx.facts.max_items is not None and ctx.facts.max_items <= most:
            return True
        return any(
            "contains" in p
            and is_number(p.get("maxContains"))
            and p["maxContains"] <= most
            and not self.swapped().check(p["contains"], [wanted], ctx.path)
            for p in ctx.parts
        )

    # --- objects --------------------------------------------------------------------------

    def _objects(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found: list[str] = []
        required = part.get("required")
        if isinstance(required, list):
            missing = sorted(set(required) - ctx.facts.required)
            if missing:
                found.append(f"at {ctx.where}: the reader requires {missing}, the writer did not")
        least = max(ctx.facts.min_properties or 0, len(ctx.facts.required)) or None
        found += _size_problems(part, ctx, "minProperties", "maxProperties", least,
                                ctx.facts.max_properties)  # fmt: skip
        found += self._names(part, ctx)
        found += self._property_names(part, ctx)
        return found + self._dependencies(part, ctx)

    def _names(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        group = PropertyGroup.of(part)
        if group.trivial:
            return []
        writers = [g for g in map(PropertyGroup.of, ctx.parts) if not g.trivial]
        names = set(group.properties).union(*(g.properties for g in writers))
        found: list[str] = []
        for name in sorted(names):
            found += self._name(name, group, writers, ctx)
        for pattern, schema in group.patterns.items():
            options = [self._pattern_options(pattern, g) for g in writers] or [[True]]
            found += self._any_option(schema, options, ctx.sub(f"<{pattern}>"))
        if not accepts_anything(group.other):
            options = [
                [g.other, *(s for p, s in g.patterns.items() if p not in group.patterns)]
                for g in writers
            ] or [[True]]
            problems = self._any_option(group.other, options, ctx.sub("*"))
            if problems and group.other is False:
                problems = [
                    f"at {ctx.where}: the reader closes the content model "
                    f"({group.other_keyword}: false)"
                ]
            found += problems
        return found

    def _name(
        self, name: str, group: PropertyGroup, writers: list[PropertyGroup], ctx: _Context
    ) -> list[str]:
        held = [s for g in writers for s, _ in g.constraints(name, "writer")]
        if False in held:
            return []
        sub, found = ctx.sub(name), []
        for schema, keyword in group.constraints(name, "reader"):
            problems = self.check(schema, held, sub)
            if not problems:
                continue
            if (
                schema is False
                and keyword.endswith("Properties")
                and keyword != "patternProperties"
            ):
                found.append(
                    f"at {sub}: property removed from a closed content model ({keyword}: false)"
                )
            elif schema is False:
                found.append(f"at {sub}: the reader forbids this property ({keyword}: false)")
            elif keyword == "properties" and all(accepts_anything(s) for s in held):
                found.append(
                    f"at {sub}: property added to an open content model; old documents may "
                    "hold any value under that name"
                )
            else:
                found += problems
        return found

    @staticmethod
    def _pattern_options(pattern: str, group: PropertyGroup) -> list[Any]:
        """What ``group`` may allow under names matching ``pattern`` (beyond its properties)."""
        if pattern in group.patterns:
            return [group.patterns[pattern]]
        others = [s for p, s in group.patterns.items() if not patterns_disjoint(pattern, p)]
        return [group.other, *others]

    def _any_option(self, schema: Any, options: list[list[Any]], path: str) -> list[str]:
        """Problems unless, for one writer group, ``schema`` accepts each of its options."""
        first: list[str] | None = None
        for group_options in options:
            problems = [p for o in group_options for p in self.check(schema, [o], path)]
            if not problems:
                return []
            first = problems if first is None else first
        return first or []

    def _property_names(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        names = part.get("propertyNames", True)
        if accepts_anything(names) or not self.check(names, [_STRING], ctx.path):
            return []
        for p in ctx.parts:
            if "propertyNames" in p and not self.check(
                names, [p["propertyNames"], _STRING], ctx.path
            ):
                return []
        closed = [
            g for g in map(PropertyGroup.of, ctx.parts) if g.other is False and not g.patterns
        ]
        if closed and all(
            not self.check(names, [{"enum": [n]}], ctx.path)
            for n in closed[0].properties
            if closed[0].properties[n] is not False
        ):
            return []
        return [f"at {ctx.where}: the reader's propertyNames rejects names the writer allows"]

    def _dependencies(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found: list[str] = []
        held = [entry for p in ctx.parts for entry in _dependency_entries(p)]
        for keyword, name, schema in _dependency_entries(part):
            if accepts_anything(schema):
                continue
            given = [s for _, n, s in held if n == name]
            problems = self.check(schema, [*ctx.parts, {"required": [name]}, *given], ctx.path)
            if problems:
                detail = problems[0].removeprefix(f"at {ctx.where}: ")
                found.append(
                    f"at {ctx.where}: the reader's {keyword} for {name!r} rejects objects with "
                    f"{name!r} the writer allows ({detail})"
                )
        return found

    # --- not, anyOf, oneOf, if, unresolved references -------------------------------------

    def _logic(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        found: list[str] = []
        if "not" in part and not self._disjoint(part["not"], ctx):
            found.append(f"at {ctx.where}: the reader's not excludes documents the writer allows")
        if isinstance(part.get("anyOf"), list):
            problems = [self.check(option, ctx.parts, ctx.path) for option in part["anyOf"]]
            if all(problems):
                found.append(_no_alternative("anyOf", problems, ctx))
        if isinstance(part.get("oneOf"), list):
            found += self._one_of(part["oneOf"], ctx)
        if "if" in part:
            found += self._if_then_else(part, ctx)
        for keyword in _REFS:
            ref = part.get(keyword)
            if isinstance(ref, str) and not (
                ("://" in ref or ref.startswith("urn:"))
                and any(p.get(keyword) == ref for p in ctx.parts)
            ):
                found.append(
                    f"at {ctx.where}: the reader's {keyword} {ref!r} cannot be followed, so it is "
                    "not known to accept the writer's documents"
                )
        return found

    def _one_of(self, options: list[Any], ctx: _Context) -> list[str]:
        problems = [self.check(option, ctx.parts, ctx.path) for option in options]
        accepting = [i for i, found in enumerate(problems) if not found]
        for index in accepting:
            if all(self._disjoint(o, ctx) for j, o in enumerate(options) if j != index):
                return []
        if accepting:
            return [
                f"at {ctx.where}: documents the writer allows may match several alternatives "
                "of the reader's oneOf"
            ]
        return [_no_alternative("oneOf", problems, ctx)]

    def _if_then_else(self, part: dict[str, Any], ctx: _Context) -> list[str]:
        condition, then, other = part["if"], part.get("then", True), part.get("else", True)
        then_holds = (
            accepts_anything(then)
            or not self.check(then, ctx.parts, ctx.path)
            or self._disjoint(condition, ctx)
        )
        else_holds = (
            accepts_anything(other)
            or not self.check(other, ctx.parts, ctx.path)
            or not self.check(condition, ctx.parts, ctx.path)
        )
        return [
            f"at {ctx.where}: the reader's {branch} (under its if) rejects documents the writer "
            "allows"
            for branch, holds in (("then", then_holds), ("else", else_holds))
            if not holds
        ]

    def _disjoint(self, schema: Any, ctx: _Context) -> bool:
        """Whether no document of the writer alternative passes ``schema`` (a reader schema)."""
        parts = self.r.flatten(schema, "writer")
        if parts == (False,):
            return True
        other = facts_of(self.r, [p for p in parts if p is not False])
        if other.empty or not (ctx.facts.atoms & other.atoms):
            return True
        if ctx.facts.values is not None and all(
            accepts(self.r, schema, v) is False for v in ctx.facts.values
        ):
            return True
        if other.values is not None and all(
            any(verdict(self.w, p, v)[0] is False for p in ctx.parts) for v in other.values
        ):
            return True
        return any(
            "not" in p and not self.swapped().check(p["not"], [schema], ctx.path) for p in ctx.parts
        )


def _no_alternative(keyword: str, problems: list[list[str]], ctx: _Context) -> str:
    """The reason no alternative fits, with the first problem of the nearest one (the one
    with the fewest problems, preferring those whose type fits)."""
    wrong_type = (
        f"at {ctx.where}: the writer allows type",
        f"at {ctx.where}: the reader restricts",
    )

    def distance(index: int) -> tuple[bool, int]:
        found = problems[index]
        return any(p.startswith(wrong_type) for p in found), len(found)

    nearest = min(range(len(problems)), key=distance, default=None)
    detail = "" if nearest is None else f" (nearest, alternative {nearest}: {problems[nearest][0]})"
    return (
        f"at {ctx.where}: no alternative of the reader's {keyword} accepts everything the "
        f"writer allows{detail}"
    )


def _type_names(lost: frozenset[str], held: frozenset[str]) -> list[str]:
    names = set(lost) - {"integer", "fraction"}
    if "fraction" in lost:
        names.add("number")
    elif "integer" in lost:
        names.add("integer" if "fraction" not in held else "number")
    return sorted(names)


def _within(held: Bound | None, wanted: Bound, *, lower: bool) -> bool:
    """Whether the writer's bound ``held`` implies the reader's ``wanted``."""
    if held is None:
        return False
    beyond = held.value > wanted.value if lower else held.value < wanted.value
    return beyond or (held.value == wanted.value and (held.exclusive or not wanted.exclusive))


def _divides(step: Any, multiple: Any) -> bool:
    if step == multiple:
        return True
    exact = isinstance(step, int) and isinstance(multiple, int) and step > 0
    return exact and multiple % step == 0


def _size_problems(
    part: dict[str, Any], ctx: _Context, low: str, high: str, held_low: Any, held_high: Any
) -> list[str]:
    found = []
    wanted_low, wanted_high = part.get(low), part.get(high)
    if is_number(wanted_low) and wanted_low > 0 and not (held_low or 0) >= wanted_low:
        writer = held_low or "none"
        found.append(
            f"at {ctx.where}: the reader tightens {low} to {wanted_low} (writer: {writer})"
        )
    if is_number(wanted_high) and not (held_high is not None and held_high <= wanted_high):
        writer = "none" if held_high is None else held_high
        found.append(
            f"at {ctx.where}: the reader tightens {high} to {wanted_high} (writer: {writer})"
        )
    return found


def _dependency_entries(part: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(keyword, property, schema the object must then pass) for each dependency of ``part``."""
    found = []
    for keyword in ("dependencies", "dependentRequired", "dependentSchemas"):
        entries = part.get(keyword)
        if not isinstance(entries, dict):
            continue
        for name, value in entries.items():
            schema = {"required": value} if isinstance(value, list) else value
            found.append((keyword, name, schema))
    return found


def _show(values: list[Any]) -> str:
    text = json.dumps(values[:5])
    return text[:-1] + ", ...]" if len(values) > 5 else text
