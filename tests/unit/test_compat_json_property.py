"""Property: when the JSON Schema checker calls a change BACKWARD compatible, it is.

Random old schemas (draft-07 and 2020-12) are changed at random (a keyword dropped or added, a
subschema replaced, members wrapped or reordered, bounds moved); whenever ``json_problems(new,
old)`` finds nothing, every sampled document the ``jsonschema`` reference validator accepts under
the old schema must pass the new one. Documents come from a small vocabulary shared with the
schemas, plus ones built from the schemas' own constants and names, so that many are valid.

Profiles: ``compat-json`` (the default, 2,000 examples per draft) and ``compat-json-long``
(set ``COMPAT_JSON_PROFILE=compat-json-long`` for a 20,000-example soak).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from schemas.compat_json import json_problems

jsonschema = pytest.importorskip("jsonschema", reason="the property test needs the test extra")

_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "compat-json", max_examples=2000, deadline=None, suppress_health_check=_HEALTH
)
settings.register_profile(
    "compat-json-long", max_examples=20_000, deadline=None, suppress_health_check=_HEALTH
)
# Mutation runs (python -m tests.mutation) run these properties once per mutant.
settings.register_profile(
    "compat-json-mutation", max_examples=200, deadline=None, suppress_health_check=_HEALTH
)
PROFILE = settings.get_profile(os.environ.get("COMPAT_JSON_PROFILE", "compat-json"))

DRAFTS = {
    "draft-07": ("http://json-schema.org/draft-07/schema#", jsonschema.Draft7Validator),
    "2020-12": ("https://json-schema.org/draft/2020-12/schema", jsonschema.Draft202012Validator),
}
NAMES = ["a", "b", "S_1", "I_1"]
PATTERNS = ["^S_", "^I_", "b", "^[ab]$"]
STRINGS = ["", "a", "b", "ab", "abc", "S_1", "red"]
NUMBERS = [-1, 0, 1, 2, 3, 2.5, 10]
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
DEFS = ["d0", "d1"]

scalars = st.sampled_from([None, True, False, *NUMBERS, *STRINGS])
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from([*NAMES, "zz"]), inner, max_size=3)
    ),
    max_leaves=8,
)
small = st.integers(min_value=0, max_value=3)
names = st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True)


def _leaf(draft: str) -> st.SearchStrategy[Any]:
    keywords = _keywords(draft)
    return st.one_of(st.booleans(), keywords, _merged(keywords))


@functools.cache
def _keywords(draft: str) -> st.SearchStrategy[dict[str, Any]]:
    """One validation keyword (or a $ref)."""
    number = st.sampled_from(NUMBERS)
    keywords = [
        st.sampled_from(TYPES).map(lambda t: {"type": t}),
        st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True).map(
            lambda ts: {"type": ts}
        ),
        st.lists(scalars, min_size=1, max_size=3).map(lambda vs: {"enum": vs}),
        scalars.map(lambda v: {"const": v}),
        number.map(lambda n: {"minimum": n}),
        number.map(lambda n: {"maximum": n}),
        number.map(lambda n: {"exclusiveMinimum": n}),
        number.map(lambda n: {"exclusiveMaximum": n}),
        st.sampled_from([1, 2, 3, 0.5]).map(lambda n: {"multipleOf": n}),
        small.map(lambda n: {"minLength": n}),
        small.map(lambda n: {"maxLength": n}),
        st.sampled_from(PATTERNS).map(lambda p: {"pattern": p}),
        small.map(lambda n: {"minItems": n}),
        small.map(lambda n: {"maxItems": n}),
        st.just({"uniqueItems": True}),
        small.map(lambda n: {"minProperties": n}),
        small.map(lambda n: {"maxProperties": n}),
        names.map(lambda ns: {"required": ns}),
        st.sampled_from(DEFS).map(lambda d: {"$ref": f"#/$defs/{d}"}),
    ]
    return st.one_of(keywords)


def _merged(keyword: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Schemas with a few keywords side by side."""
    return st.lists(keyword, min_size=1, max_size=3).map(
        lambda ds: {k: v for d in ds for k, v in d.items()}
    )


def _nested(draft: str, inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    members = st.lists(inner, min_size=1, max_size=3)
    keywords = [
        st.dictionaries(st.sampled_from(NAMES), inner, min_size=1, max_size=2).map(
            lambda ps: {"properties": ps}
        ),
        st.dictionaries(st.sampled_from(PATTERNS), inner, min_size=1, max_size=2).map(
            lambda ps: {"patternProperties": ps}
        ),
        inner.map(lambda s: {"additionalProperties": s}),
        st.sampled_from([{"pattern": "^[ab]"}, {"maxLength": 1}, {"enum": ["a", "zz"]}]).map(
            lambda s: {"propertyNames": s}
        ),
        inner.map(lambda s: {"items": s}),
        inner.map(lambda s: {"contains": s}),
        inner.map(lambda s: {"not": s}),
        members.map(lambda ms: {"allOf": ms}),
        members.map(lambda ms: {"anyOf": ms}),
        members.map(lambda ms: {"oneOf": ms}),
        st.tuples(inner, inner, inner).map(lambda t: {"if": t[0], "then": t[1], "else": t[2]}),
    ]
    if draft == "draft-07":
        keywords += [
            st.tuples(members, inner).map(lambda t: {"items": t[0], "additionalItems": t[1]}),
            st.dictionaries(st.sampled_from(NAMES), names | inner, min_size=1, max_size=2).map(
                lambda ds: {"dependencies": ds}
            ),
        ]
    else:
        keywords += [
            st.tuples(members, inner).map(lambda t: {"prefixItems": t[0], "items": t[1]}),
            members.map(lambda ms: {"prefixItems": ms}),
            st.tuples(inner, small, small).map(
                lambda t: {"contains": t[0], "minContains": t[1], "maxContains": t[2] + 1}
            ),
            st.dictionaries(st.sampled_from(NAMES), names, min_size=1, max_size=2).map(
                lambda ds: {"dependentRequired": ds}
            ),
            st.dictionaries(st.sampled_from(NAMES), inner, min_size=1, max_size=2).map(
                lambda ds: {"dependentSchemas": ds}
            ),
            inner.map(lambda s: {"unevaluatedProperties": s}),
            inner.map(lambda s: {"unevaluatedItems": s}),
        ]
    return st.one_of(st.one_of(keywords), _merged(st.one_of(keywords)))


@functools.cache
def leaves(draft: str) -> st.SearchStrategy[Any]:
    return _leaf(draft)


@functools.cache
def subschemas(draft: str) -> st.SearchStrategy[Any]:
    return st.recursive(leaves(draft), lambda inner: _nested(draft, inner), max_leaves=6)


@functools.cache
def roots(draft: str) -> st.SearchStrategy[Any]:
    body = _nested(draft, subschemas(draft)) | _merged(_keywords(draft))
    defs = st.fixed_dictionaries({d: subschemas(draft) for d in DEFS})
    return st.tuples(body, defs).map(
        lambda t: {**t[0], "$schema": DRAFTS[draft][0], "$defs": _no_cycles(t[1])}
    )


def _no_cycles(defs: dict[str, Any]) -> dict[str, Any]:
    """``d1`` refers to nothing, ``d0`` to ``d1`` and to itself below a property (a tree)."""
    tree = {"type": "object", "properties": {"a": {"$ref": "#/$defs/d0"}}}
    d0 = json.loads(json.dumps(defs["d0"]).replace("#/$defs/d0", "#/$defs/d1"))
    return {"d0": {"anyOf": [d0, tree]}, "d1": _without_refs(defs["d1"])}


def _without_refs(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_refs(s) for s in schema]
    if isinstance(schema, dict):
        return {k: _without_refs(v) for k, v in schema.items() if k != "$ref"}
    return schema


@st.composite
def changed(draw: st.DrawFn, schema: Any, draft: str, depth: int = 0) -> Any:
    """``schema`` with one random change somewhere inside it."""
    children = _children(schema)
    if children and depth < 6 and draw(st.integers(0, 2)):
        path = draw(st.sampled_from(children))
        return _replace(schema, path, draw(changed(_get(schema, path), draft, depth + 1)))
    how = draw(st.sampled_from(["drop", "add", "replace", "wrap", "reorder", "nudge"]))
    if how == "replace" or not isinstance(schema, dict):
        return draw(subschemas(draft))
    if how == "drop" and schema:
        key = draw(st.sampled_from(sorted(schema)))
        return {k: v for k, v in schema.items() if k != key}
    if how == "wrap":
        other = draw(subschemas(draft))
        kind = draw(st.sampled_from(["allOf", "anyOf", "oneOf"]))
        return {kind: [schema, other] if kind != "allOf" else [schema, schema]}
    if how == "reorder":
        for key in ("allOf", "anyOf", "oneOf", "enum", "type", "required"):
            if isinstance(schema.get(key), list):
                return {**schema, key: list(reversed(schema[key]))}
    if how == "nudge":
        for key, value in schema.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return {**schema, key: value + draw(st.sampled_from([-1, 1]))}
    return {**schema, **draw(_keywords(draft))}


_NAMED_SCHEMAS = ("properties", "patternProperties", "dependencies", "dependentSchemas")


def _children(schema: Any) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    if not isinstance(schema, dict):
        return found
    for key, value in schema.items():
        if key in ("enum", "const", "required", "$schema", "$defs") or key == "dependentRequired":
            continue
        if isinstance(value, dict) and key in _NAMED_SCHEMAS:
            found += [(key, k) for k, v in value.items() if isinstance(v, (dict, bool))]
        elif isinstance(value, list):
            found += [(key, i) for i, v in enumerate(value) if isinstance(v, (dict, bool))]
        elif isinstance(value, (dict, bool)) and key != "uniqueItems":
            found.append((key,))
    return found


def _get(schema: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        schema = schema[step]
    return schema


def _replace(schema: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(schema, list):
        return [_replace(v, rest, value) if i == head else v for i, v in enumerate(schema)]
    return {**schema, head: _replace(schema[head], rest, value)}


def interesting(*schemas: Any) -> list[Any]:
    """Documents built from the schemas' constants and property names."""
    values: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            values.extend(node.get("enum", []) if isinstance(node.get("enum"), list) else [])
            if "const" in node:
                values.append(node["const"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in schemas:
        walk(schema)
    picks = [*values[:6], "a", 1, 2.5, None]
    objects = [{n: v} for n in NAMES for v in picks[:3]] + [{n: 1 for n in NAMES[:2]}]
    arrays = [[v] for v in picks[:4]] + [picks[:2], picks[:3]]
    return picks + objects + arrays


def _valid(validator: Any, document: Any) -> bool:
    try:
        return bool(validator.is_valid(document))
    except Exception:  # e.g. a $ref the change left dangling: the schema cannot accept it
        return False


def _check_pair(draft: str, old: Any, new: Any, samples: list[Any]) -> None:
    problems = json_problems(new, old)
    event(f"{draft}: {'compatible' if not problems else 'incompatible'}")
    if problems:
        return
    make = DRAFTS[draft][1]
    old_validator, new_validator = make(old), make(new)
    checked = 0
    for document in samples + interesting(old, new):
        if _valid(old_validator, document):
            checked += 1
            assert _valid(new_validator, document), (
                "called compatible, but the old schema accepts a document the new one rejects"
                f"\nold: {json.dumps(old)}\nnew: {json.dumps(new)}"
                f"\ndocument: {json.dumps(document)}"
            )
    event(f"{draft}: compatible, documents valid under the old schema: {min(checked, 5)}+")


@st.composite
def pairs(draw: st.DrawFn, draft: str) -> tuple[Any, Any]:
    old = draw(roots(draft))
    if not draw(st.integers(0, 9)):
        return old, draw(roots(draft))
    body = {k: v for k, v in old.items() if k not in ("$schema", "$defs")}
    new = draw(changed(body, draft))
    if isinstance(new, dict):  # the changed body, with the definitions its $refs point to
        new = {**new, "$schema": DRAFTS[draft][0], "$defs": old["$defs"]}
    return old, new


@PROFILE
@given(pair=pairs("draft-07"), samples=st.lists(documents, max_size=8))
def test_compatible_draft7_changes_keep_old_documents_valid(pair, samples):
    _check_pair("draft-07", *pair, samples)


@PROFILE
@given(pair=pairs("2020-12"), samples=st.lists(documents, max_size=8))
def test_compatible_2020_12_changes_keep_old_documents_valid(pair, samples):
    _check_pair("2020-12", *pair, samples)
