"""JSON Schema compatibility: does a reader schema accept every document a writer schema does?

Confluent Schema Registry's rules, keyword by keyword: widening types (and
``integer`` → ``number``), removing constraints and relaxing bounds are safe;
narrowing, adding constraints, newly required properties and closing a content
model are not. Like Confluent, a property added to an *open* content model is
incompatible: old documents may already carry that name with any value. Local
``$ref`` s (``#/definitions/...``, ``#/$defs/...``) are followed; remote ones are
compared as written.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["json_problems"]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("pattern", "format", "not", "dependencies", "dependentRequired", "dependentSchemas")
_BRANCHES = ("anyOf", "oneOf")


def json_problems(reader: Any, writer: Any) -> list[str]:
    """Why some document valid under ``writer`` may be invalid under ``reader``.

    >>> old = {"type": "object", "properties": {"a": {"type": "integer"}}}
    >>> json_problems({"type": "object", "properties": {"a": {"type": "number"}}}, old)
    []
    >>> json_problems({"type": "object", "properties": {"a": {"type": "string"}}}, old)
    ['at a: the writer allows type integer, the reader does not']
    """
    return _Checker(reader, writer).problems(reader, writer, "")


def _accepts_anything(schema: Any) -> bool:
    return schema is True or schema == {}


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None
    return {declared} if isinstance(declared, str) else set(declared)


def _enum(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _without(schema: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


class _Checker:
    def __init__(self, reader_root: Any, writer_root: Any) -> None:
        self._roots = (reader_root, writer_root)
        self._in_progress: set[tuple[int, int]] = set()

    def problems(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader, writer = self._deref(reader, 0), self._deref(writer, 1)
        where = path or "the top level"
        if writer is False or _accepts_anything(reader):
            return []
        if reader is False:
            return [f"at {where}: the reader accepts nothing"]
        if writer is True:
            writer = {}
        if not isinstance(reader, dict) or not isinstance(writer, dict):
            return [f"at {where}: not a JSON Schema"]
        key = (id(reader), id(writer))
        if key in self._in_progress:
            return []
        self._in_progress.add(key)
        try:
            return self._compare(reader, writer, path, where)
        finally:
            self._in_progress.discard(key)

    def _deref(self, schema: Any, side: int) -> Any:
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
            target = self._resolve(schema["$ref"], side)
            if target is None:
                return schema
            schema, seen = target, seen + 1
        return schema

    def _resolve(self, ref: str, side: int) -> Any:
        if not ref.startswith("#"):
            return None
        node: Any = self._roots[side]
        for part in filter(None, ref[1:].split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _compare(self, r: dict[str, Any], w: dict[str, Any], path: str, where: str) -> list[str]:
        if not _has_branches(r) and _has_branches(w):
            return [p for branch in _writer_branches(w) for p in self.problems(r, branch, path)]
        found = self._type_problems(r, w, where)
        found += self._value_problems(r, w, where)
        r_types, w_types = _types(r), _types(w)
        if (r_types is None or "object" in r_types) and (w_types is None or "object" in w_types):
            found += self._object_problems(r, w, path, where)
        if (r_types is None or "array" in r_types) and (w_types is None or "array" in w_types):
            found += self._array_problems(r, w, path)
        found += self._combinator_problems(r, w, path, where)
        return found

    def _type_problems(self, r: dict[str, Any], w: dict[str, Any], where: str) -> list[str]:
        r_types, w_types = _types(r), _types(w)
        if r_types is None:
            return []
        if w_types is None:
            return [
                f"at {where}: the reader restricts the type to {sorted(r_types)}, "
                "the writer allowed any"
            ]
        lost = sorted(
            t for t in w_types if t not in r_types and not (t == "integer" and "number" in r_types)
        )
        return [f"at {where}: the writer allows type {t}, the reader does not" for t in lost]

    def _value_problems(self, r: dict[str, Any], w: dict[str, Any], where: str) -> list[str]:
        found: list[str] = []
        r_enum, w_enum = _enum(r), _enum(w)
        if r_enum is not None:
            if w_enum is None:
                found.append(f"at {where}: the reader adds an enum/const the writer did not have")
            else:
                lost = [v for v in w_enum if _text(v) not in {_text(x) for x in r_enum}]
                if lost:
                    found.append(f"at {where}: the reader drops enum values {lost}")
        for keyword in _LOWER_BOUNDS:
            if _is_number(r.get(keyword)) and not (
                _is_number(w.get(keyword)) and w[keyword] >= r[keyword]
            ):
                found.append(
                    f"at {where}: the reader tightens {keyword} to {r[keyword]} "
                    f"(writer: {w.get(keyword, 'none')})"
                )
        for keyword in _UPPER_BOUNDS:
            if _is_number(r.get(keyword)) and not (
                _is_number(w.get(keyword)) and w[keyword] <= r[keyword]
            ):
                found.append(
                    f"at {where}: the reader tightens {keyword} to {r[keyword]} "
                    f"(writer: {w.get(keyword, 'none')})"
                )
        if _is_number(r.get("multipleOf")) and not (
            _is_number(w.get("multipleOf")) and w["multipleOf"] % r["multipleOf"] == 0
        ):
            found.append(f"at {where}: the reader adds multipleOf {r['multipleOf']}")
        if r.get("uniqueItems") is True and w.get("uniqueItems") is not True:
            found.append(f"at {where}: the reader adds uniqueItems")
        for keyword in _EXACT:
            if keyword in r and _text(r[keyword]) != _text(w.get(keyword)):
                found.append(f"at {where}: the reader adds or changes {keyword}")
        return found

    def _object_problems(
        self, r: dict[str, Any], w: dict[str, Any], path: str, where: str
    ) -> list[str]:
        found: list[str] = []
        newly_required = sorted(set(r.get("required", [])) - set(w.get("required", [])))
        if newly_required:
            found.append(f"at {where}: the reader requires {newly_required}, the writer did not")
        r_props, w_props = r.get("properties", {}), w.get("properties", {})
        r_extra, w_extra = r.get("additionalProperties", True), w.get("additionalProperties", True)
        for name, schema in r_props.items():
            sub = f"{path}.{name}" if path else name
            if name in w_props:
                found += self.problems(schema, w_props[name], sub)
            elif w_extra is not False and not _accepts_anything(w_extra):
                found += self.problems(schema, w_extra, sub)
            elif w_extra is not False and not _accepts_anything(schema):
                found.append(
                    f"at {sub}: property added to an open content model; old "
                    "documents may hold any value under that name"
                )
        for name, schema in w_props.items():
            if name in r_props:
                continue
            sub = f"{path}.{name}" if path else name
            if r_extra is False:
                found.append(f"at {sub}: property removed from a closed content model")
            else:
                found += self.problems(r_extra, schema, sub)
        if w_extra is not False and not _accepts_anything(r_extra):
            if r_extra is False:
                found.append(
                    f"at {where}: the reader closes the content model (additionalProperties: false)"
                )
            else:
                found += self.problems(r_extra, w_extra, f"{path}.*" if path else "*")
        return found

    def _array_problems(self, r: dict[str, Any], w: dict[str, Any], path: str) -> list[str]:
        r_items = r.get("prefixItems", r.get("items", True))
        w_items = w.get("prefixItems", w.get("items", True))
        sub = f"{path}[]"
        if isinstance(r_items, list) and isinstance(w_items, list):
            found: list[str] = []
            for index, (ri, wi) in enumerate(zip(r_items, w_items, strict=False)):
                found += self.problems(ri, wi, f"{path}[{index}]")
            return found
        if isinstance(w_items, list):
            return [p for wi in w_items for p in self.problems(r_items, wi, sub)]
        if isinstance(r_items, list):
            return [p for ri in r_items for p in self.problems(ri, w_items, sub)]
        return self.problems(r_items, w_items, sub)

    def _combinator_problems(
        self, r: dict[str, Any], w: dict[str, Any], path: str, where: str
    ) -> list[str]:
        found: list[str] = []
        r_all, w_all = r.get("allOf", []), w.get("allOf", [])
        for index, member in enumerate(r_all):
            found += self.problems(member, w_all[index] if len(w_all) == len(r_all) else w, path)
        r_branches = [b for k in _BRANCHES for b in r.get(k, [])]
        if not r_branches:
            return found
        for index, branch in enumerate(_writer_branches(w)):
            if not any(not self.problems(rb, branch, path) for rb in r_branches):
                found.append(
                    f"at {where}: writer alternative {index} matches no reader alternative"
                )
        return found


def _has_branches(schema: dict[str, Any]) -> bool:
    return any(k in schema for k in _BRANCHES)


def _writer_branches(schema: dict[str, Any]) -> list[Any]:
    """Each alternative of ``schema`` with the keywords beside anyOf/oneOf folded in."""
    base = _without(schema, *_BRANCHES)
    branches = [b for k in _BRANCHES for b in schema.get(k, [])]
    return [{**base, **b} if isinstance(b, dict) else b for b in branches] or [base]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
