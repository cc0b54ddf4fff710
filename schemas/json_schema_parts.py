"""JSON Schemas taken apart for the compatibility check: dialects, parts, alternatives.

A schema is read as a conjunction of *parts*: ``allOf`` members and in-place ``$ref`` targets
become parts of their own (duplicates and order do not matter), keywords the schema's draft
does not know are dropped, as validators drop them, and ``unevaluatedProperties``/``-Items``
become parts naming what the schema evaluates itself. A writer's ``anyOf``/``oneOf``/``if``
are split into alternatives, each a conjunction again.

Every approximation here leans one way: a *reader* is read as accepting at most what it
accepts, a *writer* as allowing at least what it allows, so that a check built on them never
calls a change compatible that is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

__all__ = [
    "ATOMS",
    "InvalidSchemaError",
    "PropertyGroup",
    "Role",
    "Side",
    "accepts_anything",
    "array_view",
    "atoms_of",
    "canonical",
    "is_number",
    "patterns_disjoint",
    "search",
]

Role = Literal["reader", "writer"]

# "number" is {"integer", "fraction"}: an integer is a number, and a check that the reader
# accepts every type the writer allows is a subset test.
ATOMS = frozenset({"null", "boolean", "object", "array", "string", "integer", "fraction"})
_TYPE_ATOMS = {
    "null": {"null"},
    "boolean": {"boolean"},
    "object": {"object"},
    "array": {"array"},
    "string": {"string"},
    "integer": {"integer"},
    "number": {"integer", "fraction"},
}
_LATER = ("2019-09", "2020-12")
# Keywords each draft does not know; validators ignore them, so does the check.
_UNKNOWN = {
    "draft-04": {"const", "contains", "propertyNames", "if", "then", "else", "dependentRequired",
                 "dependentSchemas", "prefixItems", "unevaluatedItems", "unevaluatedProperties",
                 "minContains", "maxContains", "$dynamicRef", "$recursiveRef"},
    "draft-06": {"if", "then", "else", "dependentRequired", "dependentSchemas", "prefixItems",
                 "unevaluatedItems", "unevaluatedProperties", "minContains", "maxContains",
                 "$dynamicRef", "$recursiveRef"},
    "draft-07": {"dependentRequired", "dependentSchemas", "prefixItems", "unevaluatedItems",
                 "unevaluatedProperties", "minContains", "maxContains", "$dynamicRef",
                 "$recursiveRef"},
    "2019-09": {"prefixItems", "dependencies", "$dynamicRef"},
    "2020-12": {"additionalItems", "dependencies", "$recursiveRef"},
}  # fmt: skip
# Every keyword that can reject a document; a part with none of them accepts anything.
_ASSERTIONS = frozenset(
    {
        "type", "enum", "const", "multipleOf", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "minLength", "maxLength", "pattern", "format", "items",
        "additionalItems", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains",
        "minContains", "maxContains", "properties", "patternProperties", "additionalProperties",
        "unevaluatedProperties", "unevaluatedItems", "required", "minProperties", "maxProperties",
        "propertyNames", "dependencies", "dependentRequired", "dependentSchemas", "not", "allOf",
        "anyOf", "oneOf", "if", "$ref", "$dynamicRef", "$recursiveRef",
    }
)  # fmt: skip
# In-place applicators whose annotations make unevaluated* depend on the document itself.
_PROPERTY_ANNOTATORS = ("anyOf", "oneOf", "if", "dependentSchemas", "$dynamicRef", "$recursiveRef")
_ITEM_ANNOTATORS = ("anyOf", "oneOf", "if", "contains", "$dynamicRef", "$recursiveRef")
_DATA = frozenset({"enum", "const", "default", "examples"})
_MAX_ALTERNATIVES = 64
_MISSING = object()


class InvalidSchemaError(ValueError):
    """A value where a schema should be that is neither an object nor a boolean."""


def is_number(value: Any) -> TypeGuard[int | float]:
    """Whether ``value`` is a JSON number (``bool`` is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def canonical(value: Any) -> str:
    """One text per JSON value as JSON Schema compares them: ``1`` and ``1.0`` are equal."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    return json.dumps(norm(value), sort_keys=True)


def accepts_anything(schema: Any) -> bool:
    """Whether ``schema`` is ``true`` or has no keyword that can reject a document."""
    return schema is True or (isinstance(schema, dict) and not _ASSERTIONS.intersection(schema))


def atoms_of(declared: Any) -> frozenset[str]:
    """The atoms a ``type`` keyword allows (unknown type names allow nothing)."""
    names = [declared] if isinstance(declared, str) else declared
    if not isinstance(names, list):
        return ATOMS
    return frozenset(
        a for name in names if isinstance(name, str) for a in _TYPE_ATOMS.get(name, ())
    )


def _dialect(root: Any) -> str:
    uri = root.get("$schema", "") if isinstance(root, dict) else ""
    uri = uri if isinstance(uri, str) else ""
    for name in ("2020-12", "2019-09", "draft-04", "draft-06"):
        if name in uri:
            return name
    return "draft-07"  # draft-07 and no $schema, as fastjsonschema and Confluent read them


def _schema_nodes(root: Any) -> list[dict[str, Any]]:
    """Every object in ``root`` outside the data keywords (enum, const, default, examples)."""
    found, pending = [], [root]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            found.append(node)
            pending.extend(v for k, v in node.items() if k not in _DATA)
    return found


def _keys(schema: dict[str, Any], keyword: str) -> list[str]:
    value = schema.get(keyword)
    return list(value) if isinstance(value, dict) else []


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text`` (None: Python cannot read it)."""
    try:
        return re.search(pattern, text) is not None
    except (re.error, TypeError):
        return None


def _literal_prefix(pattern: str) -> str | None:
    if "|" in pattern:
        return None
    match = re.match(r"\^([A-Za-z0-9_-]*)(.?)", pattern)
    if not match:
        return None
    literal, after = match.groups()
    return literal[:-1] if after and after in "?*{+" else literal


def patterns_disjoint(first: str, second: str) -> bool:
    """Whether no name can match both: two anchored, differing literal prefixes."""
    a, b = _literal_prefix(first), _literal_prefix(second)
    return a is not None and b is not None and not a.startswith(b) and not b.startswith(a)


@dataclass(frozen=True)
class PropertyGroup:
    """``properties``, ``patternProperties`` and the schema for every other name, of one part."""

    properties: dict[str, Any]
    patterns: dict[str, Any]
    other: Any
    other_keyword: str

    @classmethod
    def of(cls, part: dict[str, Any]) -> PropertyGroup:
        properties = part.get("properties")
        patterns = part.get("patternProperties")
        return cls(
            properties if isinstance(properties, dict) else {},
            patterns if isinstance(patterns, dict) else {},
            part.get("additionalProperties", True),
            part.get("$unevaluated", "additionalProperties"),
        )

    @property
    def trivial(self) -> bool:
        """Whether the group lets any name have any value."""
        schemas = [*self.properties.values(), *self.patterns.values(), self.other]
        return all(accepts_anything(s) for s in schemas)

    def constraints(self, name: str, role: Role) -> list[tuple[Any, str]]:
        """The schemas a value under ``name`` must pass, each with the keyword imposing it.

        A pattern Python cannot read may or may not match: a reader is held to both its
        schema and the one for other names, a writer to neither.
        """
        found: list[tuple[Any, str]] = []
        if name in self.properties:
            found.append((self.properties[name], "properties"))
        matched = unknown = False
        for pattern, schema in self.patterns.items():
            hit = search(pattern, name)
            unknown = unknown or hit is None
            if hit or (hit is None and role == "reader"):
                matched = matched or bool(hit)
                found.append((schema, "patternProperties"))
        if name not in self.properties and not matched and not (unknown and role == "writer"):
            found.append((self.other, self.other_keyword))
        return found


def array_view(part: dict[str, Any], dialect: str) -> tuple[list[Any], Any, str]:
    """Schemas by position, the schema for the items after them, and that schema's keyword."""
    rest_keyword = part.get("$unevaluated", "items")
    if dialect == "2020-12":
        prefix = part.get("prefixItems", [])
        return (prefix if isinstance(prefix, list) else []), part.get("items", True), rest_keyword
    items = part.get("items", True)
    if isinstance(items, list):
        return items, part.get("additionalItems", True), part.get("$unevaluated", "additionalItems")
    return [], items, rest_keyword


class Side:
    """One of the two schemas: its root (for ``$ref``), its draft, and readings of its parts."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.dialect = _dialect(root)
        self._unknown = _UNKNOWN[self.dialect]
        self._flat: dict[tuple[int, Role], tuple[Any, tuple[Any, ...]]] = {}
        self._anchor_map: dict[str, Any] | None = None

    def resolve(self, ref: str) -> Any:
        """The target of a local ``$ref`` (a JSON pointer or an anchor), else a sentinel."""
        if not ref.startswith("#"):
            return _MISSING
        if len(ref) > 1 and ref[1] != "/":
            return self._anchors().get(ref[1:], _MISSING)
        node: Any = self.root
        for raw in ref[2:].split("/") if len(ref) > 1 else []:
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return _MISSING
        return node

    def _anchors(self) -> dict[str, Any]:
        if self._anchor_map is None:
            self._anchor_map = {}
            for node in _schema_nodes(self.root):
                name = node.get("$anchor")
                legacy = node.get("$id") if self.dialect not in _LATER else None
                if isinstance(legacy, str) and legacy.startswith("#"):
                    name = legacy[1:]
                if isinstance(name, str):
                    self._anchor_map.setdefault(name, node)
        return self._anchor_map

    def dangling_refs(self) -> list[str]:
        """The local ``$ref`` s of the whole schema that lead nowhere."""
        return [
            node["$ref"]
            for node in _schema_nodes(self.root)
            if isinstance(node.get("$ref"), str)
            and node["$ref"].startswith("#")
            and self.resolve(node["$ref"]) is _MISSING
        ]

    def flatten(self, schema: Any, role: Role) -> tuple[Any, ...]:
        """The parts of ``schema``: ``()`` accepts anything, ``(False,)`` nothing."""
        key = (id(schema), role)
        if key not in self._flat:
            self._flat[key] = (schema, self._flatten(schema, role))
        return self._flat[key][1]

    def _flatten(self, schema: Any, role: Role) -> tuple[Any, ...]:
        parts: list[Any] = []
        seen: set[int] = set()
        texts: set[str] = set()
        pending = [schema]
        while pending:
            node = pending.pop()
            if node is True:
                continue
            if node is False:
                return (False,)
            if not isinstance(node, dict):
                raise InvalidSchemaError(f"{node!r} is not a schema (an object or a boolean)")
            if id(node) in seen:
                continue
            seen.add(id(node))
            extra = self._unevaluated_parts(node, role) if self.dialect in _LATER else []
            part = self._clean(node)
            ref = part.get("$ref")
            if isinstance(ref, str):
                target = self.resolve(ref)
                if target is not _MISSING:
                    pending.append(target)
                    part = {} if self.dialect not in _LATER else _without(part, "$ref")
                elif self.dialect not in _LATER:
                    part = {"$ref": ref}  # siblings of $ref are ignored before 2019-09
            if isinstance(part.get("allOf"), list):
                pending.extend(part["allOf"])
                part = _without(part, "allOf")
            for piece in (part, *extra):
                text = canonical(piece)
                if not accepts_anything(piece) and text not in texts:
                    texts.add(text)
                    parts.append(piece)
        return tuple(parts)

    def _clean(self, node: dict[str, Any]) -> dict[str, Any]:
        dropped = ("unevaluatedProperties", "unevaluatedItems")
        part = {k: v for k, v in node.items() if k not in self._unknown and k not in dropped}
        if self.dialect == "draft-04":  # boolean exclusiveMinimum/-Maximum, as in later drafts
            for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                if part.get(flag) is True and is_number(part.get(bound)):
                    part[flag] = part.pop(bound)
                elif isinstance(part.get(flag), bool):
                    del part[flag]
        return part

    def _closure(self, node: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
        """``node`` and the schemas applied in place through allOf/$ref; whether all resolved."""
        found: list[dict[str, Any]] = []
        resolved, pending, seen = True, [node], set()
        while pending:
            current = pending.pop()
            if not isinstance(current, dict) or id(current) in seen:
                continue
            seen.add(id(current))
            found.append(current)
            if isinstance(current.get("allOf"), list):
                pending.extend(current["allOf"])
            if isinstance(current.get("$ref"), str):
                target = self.resolve(current["$ref"])
                resolved = resolved and target is not _MISSING
                pending.append(target)
        return found, resolved

    def _unevaluated_parts(self, node: dict[str, Any], role: Role) -> list[dict[str, Any]]:
        """unevaluatedProperties/-Items as parts naming what the schema itself evaluates.

        A reader ignores what its anyOf/oneOf/if/contains would evaluate (its unevaluated
        schema then applies to more, so it accepts less); a writer whose evaluation depends
        on such keywords drops the keyword (it then allows more).
        """
        if "unevaluatedProperties" not in node and "unevaluatedItems" not in node:
            return []
        closure, resolved = self._closure(node)
        nested = closure[1:]
        found: list[dict[str, Any]] = []

        def unknowable(annotators: tuple[str, ...]) -> bool:
            return role == "writer" and (
                not resolved or any(k in n for n in closure for k in annotators)
            )

        if "unevaluatedProperties" in node and not (
            "additionalProperties" in node
            or any("additionalProperties" in n or "unevaluatedProperties" in n for n in nested)
            or unknowable(_PROPERTY_ANNOTATORS)
        ):
            names = {k: True for n in closure for k in _keys(n, "properties")}
            patterns = {k: True for n in closure for k in _keys(n, "patternProperties")}
            found.append(
                {"properties": names, "patternProperties": patterns,
                 "additionalProperties": node["unevaluatedProperties"],
                 "$unevaluated": "unevaluatedProperties"}
            )  # fmt: skip
        later = self.dialect == "2020-12"
        if "unevaluatedItems" in node and not (
            any(("items" if later else "additionalItems") in n for n in closure)
            or any("unevaluatedItems" in n for n in nested)
            or (not later and any(isinstance(n.get("items"), dict) for n in closure))
            or unknowable(_ITEM_ANNOTATORS)
        ):
            prefix_keyword = "prefixItems" if later else "items"
            size = max((len(n.get(prefix_keyword) or []) for n in closure), default=0)
            piece: dict[str, Any] = {"$unevaluated": "unevaluatedItems"}
            if size:
                piece[prefix_keyword] = [True] * size
            piece["items" if later or not size else "additionalItems"] = node["unevaluatedItems"]
            found.append(piece)
        return found

    def flatten_all(self, schemas: Iterable[Any], role: Role) -> tuple[Any, ...]:
        """The parts of the conjunction of ``schemas``."""
        return tuple(p for s in schemas for p in self.flatten(s, role))

    def alternatives(self, schemas: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The writer conjunction ``schemas`` split at anyOf/oneOf/if into conjunctions.

        Beyond a few dozen alternatives the rest are dropped, which only lets the writer
        allow more. Conjunctions that are plainly unsatisfiable are left out.
        """
        branches, done, steps = [self.flatten_all(schemas, "writer")], [], 0
        while branches:
            parts = branches.pop()
            if False in parts:
                continue
            choices = [(i, c) for i, c in enumerate(map(_choice, parts)) if c is not None]
            if not choices:
                done.append(parts)
                continue
            index, (keywords, options) = choices[0]
            base = (*parts[:index], _without(parts[index], *keywords), *parts[index + 1 :])
            steps += 1
            if steps > 4 * _MAX_ALTERNATIVES or len(done) + len(branches) + len(options) > (
                _MAX_ALTERNATIVES
            ):
                branches.append(base)
                continue
            for option in options:
                branches.append((*base, *self.flatten_all(option, "writer")))
        return done


def _choice(part: Any) -> tuple[tuple[str, ...], list[list[Any]]] | None:
    """The first disjunction of a writer part: keywords to drop and its options."""
    if not isinstance(part, dict):
        return None
    if isinstance(part.get("anyOf"), list):
        return ("anyOf",), [[option] for option in part["anyOf"]]
    if isinstance(part.get("oneOf"), list):
        options = part["oneOf"]
        return ("oneOf",), [
            [option, *({"not": other} for j, other in enumerate(options) if j != i)]
            for i, option in enumerate(options)
        ]
    if "if" in part:
        condition = part["if"]
        return ("if", "then", "else"), [
            [condition, part.get("then", True)],
            [{"not": condition}, part.get("else", True)],
        ]
    return None
