"""JSON Schema compatibility: array ``contains`` counts, ``multipleOf``, ``if`` without
``then``, and schemas too complex to compare.

What ``tests/unit/test_compat_json.py`` and the property test leave out. Each change
the checker refuses comes with a witness: a document the old (writer) schema accepts
and the new (reader) one rejects, checked with the ``jsonschema`` reference validator,
so the expected verdicts are facts about the schemas, not about the checker.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.compat_json import json_problems

jsonschema = pytest.importorskip("jsonschema", reason="needs the test extra")

D2020 = "https://json-schema.org/draft/2020-12/schema"
I = {"type": "integer"}  # noqa: E741
S = {"type": "string"}


def draft2020(schema: dict[str, Any]) -> dict[str, Any]:
    return {"$schema": D2020, **schema}


def array(**keywords: Any) -> dict[str, Any]:
    return draft2020({"type": "array", **keywords})


def _valid(schema: Any, document: Any) -> bool:
    """The reference validator's verdict; no ``$schema`` means draft-07, as for the checker."""
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return validator(schema, format_checker=jsonschema.FormatChecker()).is_valid(document)


_NO_WITNESS = object()

# (reader, writer, a document the writer accepts and the reader rejects, or none)
CASES = {
    # contains/minContains proven by the writer's minItems with every item matching.
    "items match and minItems 1 give contains": (
        array(contains=I),
        array(items=I, minItems=1),
        _NO_WITNESS,
    ),
    "items match but minItems 0": (array(contains=I), array(items=I, minItems=0), []),
    "items match and minItems reach minContains": (
        array(contains=I, minContains=2),
        array(items=I, minItems=2),
        _NO_WITNESS,
    ),
    "items match but minItems below minContains": (
        array(contains=I, minContains=2),
        array(items=I, minItems=1),
        [1],
    ),
    "prefix and rest items all match": (
        array(contains=I, minContains=2),
        array(prefixItems=[I], items=I, minItems=2),
        _NO_WITNESS,
    ),
    "the rest of the items do not match": (
        array(contains=I, minContains=2),
        array(prefixItems=[I], items=S, minItems=2),
        [1, "a"],
    ),
    "a prefix item does not match": (
        array(contains=I, minContains=2),
        array(prefixItems=[S], items=I, minItems=2),
        ["a", 1],
    ),
    # The writer's own contains and minContains (1 when not given).
    "the writer's minContains reaches the reader's": (
        array(contains=I, minContains=2),
        array(contains=I, minContains=2, items={"type": ["integer", "string"]}),
        _NO_WITNESS,
    ),
    "the writer's contains guarantees one match only": (
        array(contains=I, minContains=2),
        array(contains=I),
        [1],
    ),
    # maxContains: the writer's maxItems or maxContains at most the reader's.
    "maxItems equal to maxContains": (
        array(contains=I, minContains=0, maxContains=2),
        array(maxItems=2),
        _NO_WITNESS,
    ),
    "the writer's maxContains equal to the reader's": (
        array(contains=I, minContains=0, maxContains=2),
        array(contains=I, maxContains=2),
        _NO_WITNESS,
    ),
    "maxItems above maxContains": (
        array(contains=I, minContains=0, maxContains=2),
        array(maxItems=3),
        [1, 2, 3],
    ),
    # multipleOf: proven for equal steps and integer steps dividing the writer's.
    "equal fractional steps": (
        {"multipleOf": 0.5},
        {"type": "number", "multipleOf": 0.5},
        _NO_WITNESS,
    ),
    "step 1 divides every integer step": ({"multipleOf": 1}, {"multipleOf": 2}, _NO_WITNESS),
    "integer step dividing the writer's": ({"multipleOf": 3}, {"multipleOf": 12}, _NO_WITNESS),
    "integer step not dividing the writer's": ({"multipleOf": 3}, {"multipleOf": 4}, 4),
    # 0.09 % 0.03 == 0 in floating point, yet 0.44999999999999996 (5 * 0.09) is not a
    # multiple of 0.03 to the reference validator: fractional steps are never proven.
    "fractional steps that float division calls dividing": (
        {"multipleOf": 0.03},
        {"type": "number", "multipleOf": 0.09},
        0.44999999999999996,
    ),
    # if without then: then is true, so only else can reject.
    "if/else without then, the writer inside if": (
        {"if": I, "else": S},
        I,
        _NO_WITNESS,
    ),
    "if/else without then, the writer inside else": ({"if": I, "else": S}, S, _NO_WITNESS),
    # A reader's pattern the writer does not have: the writer's overlapping patterns
    # (here ^a, not the disjoint ^z) say what names matching it may hold.
    "a pattern overlapping only a matching writer pattern": (
        {"type": "object", "patternProperties": {"^ab": I}},
        {"type": "object", "patternProperties": {"^a": I, "^z": S}, "additionalProperties": False},
        _NO_WITNESS,
    ),
    "a pattern overlapping a writer pattern of another type": (
        {"type": "object", "patternProperties": {"^ab": S}},
        {"type": "object", "patternProperties": {"^a": I, "^z": S}, "additionalProperties": False},
        {"ab": 1},
    ),
    "if/else without then, the writer outside both": (
        {"if": I, "else": S},
        {"type": "boolean"},
        True,
    ),
}


@pytest.mark.parametrize(("reader", "writer", "witness"), CASES.values(), ids=list(CASES))
def test_a_change_is_refused_exactly_when_a_document_shows_it_breaks(reader, writer, witness):
    problems = json_problems(reader, writer)
    if witness is _NO_WITNESS:
        assert problems == []
    else:
        assert _valid(writer, witness) and not _valid(reader, witness)  # the witness holds
        assert len(problems) == 1, problems


def test_the_problems_name_the_keyword_and_the_counts():
    assert json_problems(array(contains=I, minContains=2), array(items=I, minItems=1)) == [
        "at the top level: the reader requires 2 item(s) matching contains "
        "(contains/minContains), the writer does not guarantee them"
    ]
    assert json_problems(array(contains=I, minContains=0, maxContains=2), array(maxItems=3)) == [
        "at the top level: the reader allows at most 2 item(s) matching contains "
        "(maxContains), the writer allows more"
    ]
    assert json_problems({"multipleOf": 0.03}, {"type": "number", "multipleOf": 0.09}) == [
        "at the top level: the reader adds multipleOf 0.03 (writer: 0.09)"
    ]


def test_values_a_reader_drops_are_listed_up_to_five():
    assert json_problems({"enum": [0]}, {"enum": [0, 1, 2, 3, 4, 5]}) == [
        "at the top level: the reader's enum rejects [1, 2, 3, 4, 5], which the writer allows"
    ]
    assert json_problems({"enum": [1]}, {"enum": [1, 2, 3, 4, 5, 6, 7]}) == [
        "at the top level: the reader's enum rejects [2, 3, 4, 5, 6, ...], which the writer allows"
    ]


def test_if_then_else_and_one_of_problems_name_the_branch_and_the_path():
    assert json_problems({"if": I, "else": S}, {"type": "number"}) == [
        "at the top level: the reader's else (under its if) rejects documents the writer allows"
    ]
    assert json_problems({"if": I, "then": {"minimum": 0}}, I) == [
        "at the top level: the reader's then (under its if) rejects documents the writer allows"
    ]
    reader = {"type": "object", "properties": {"a": {"oneOf": [S, {"type": "boolean"}]}}}
    assert json_problems(reader, {"type": "object", "properties": {"a": I}}) == [
        "at a: no alternative of the reader's oneOf accepts everything the writer allows "
        "(nearest, alternative 0: at a: the writer allows type integer, the reader does not)"
    ]


def test_a_multiple_of_zero_is_a_problem_not_a_crash():
    assert json_problems({"multipleOf": 0}, {"type": "number", "multipleOf": 3}) == [
        "at the top level: the reader adds multipleOf 0 (writer: 3)"
    ]


def _choices(count: int, low: int) -> dict[str, Any]:
    """An object whose 25 properties are each one of ``count`` single integers."""
    one_of = {
        "anyOf": [{"type": "integer", "minimum": n, "maximum": n} for n in range(low, low + count)]
    }
    return {"type": "object", "properties": {f"p{j}": one_of for j in range(25)}}


def test_schemas_too_complex_to_compare_are_one_problem_not_a_hang():
    # Each writer alternative against each reader alternative, in every property:
    # 25 * 30 * 30 comparisons, beyond the checker's budget.
    problems = json_problems(_choices(30, 1000), _choices(30, 0))
    assert len(problems) == 1, problems
    assert problems[0].endswith(
        ": the schemas are too complex to compare (too many combinations or too deep)"
    )
    # Fewer alternatives fit in the budget: every property's problems are reported.
    problems = json_problems(_choices(10, 1000), _choices(10, 0))
    assert {p.split(":")[0] for p in problems} == {f"at p{j}" for j in range(25)}
    assert not any("too complex" in p for p in problems)


# --- Every reason, word for word ----------------------------------------------------------
#
# (reader, writer, the problems exactly, a document the writer accepts and the reader
# rejects). An empty list of problems comes with no witness; every refusal comes with one,
# checked with the reference validator, so each refusal is a fact about the schemas. The
# exact text pins the place (``a``, ``[1]``, ``[]``, ``*``, ``<pattern>``) and the keyword.

OBJ = {"type": "object"}


def obj(**keywords: Any) -> dict[str, Any]:
    return {"type": "object", **keywords}


EXACT: dict[str, tuple[Any, Any, list[str], Any]] = {
    # Sizes: a bound equal to the writer's is no tightening; a first bound is.
    "minLength added": (
        {"minLength": 1},
        S,
        ["at the top level: the reader tightens minLength to 1 (writer: none)"],
        "",
    ),
    "minLength kept": ({"minLength": 2}, {**S, "minLength": 2}, [], _NO_WITNESS),
    "maxLength kept": ({"maxLength": 2}, {**S, "maxLength": 2}, [], _NO_WITNESS),
    "minItems raised": (
        {"minItems": 2},
        {"type": "array", "minItems": 1},
        ["at the top level: the reader tightens minItems to 2 (writer: 1)"],
        [1],
    ),
    "minItems kept": ({"minItems": 2}, {"type": "array", "minItems": 2}, [], _NO_WITNESS),
    "maxItems kept": ({"maxItems": 3}, {"type": "array", "maxItems": 3}, [], _NO_WITNESS),
    "minProperties added": (
        {"minProperties": 1},
        OBJ,
        ["at the top level: the reader tightens minProperties to 1 (writer: none)"],
        {},
    ),
    "maxProperties added": (
        {"maxProperties": 3},
        OBJ,
        ["at the top level: the reader tightens maxProperties to 3 (writer: none)"],
        {"a": 1, "b": 2, "c": 3, "d": 4},
    ),
    "minProperties kept": ({"minProperties": 2}, obj(minProperties=2), [], _NO_WITNESS),
    "maxProperties kept": ({"maxProperties": 3}, obj(maxProperties=3), [], _NO_WITNESS),
    "required names count as properties": (
        {"minProperties": 2},
        obj(required=["a", "b"]),
        [],
        _NO_WITNESS,
    ),
    # uniqueItems: kept, or implied by at most one item.
    "uniqueItems kept": (
        {"uniqueItems": True},
        {"type": "array", "uniqueItems": True},
        [],
        _NO_WITNESS,
    ),
    "uniqueItems of at most one item": (
        {"uniqueItems": True},
        {"type": "array", "maxItems": 1},
        [],
        _NO_WITNESS,
    ),
    "uniqueItems of two items": (
        {"uniqueItems": True},
        {"type": "array", "maxItems": 2},
        ["at the top level: the reader adds uniqueItems"],
        [1, 1],
    ),
    # Numbers: upper and lower bounds, exclusive or not; integers round exclusive bounds.
    "maximum raised": ({"maximum": 10}, {"type": "number", "maximum": 5}, [], _NO_WITNESS),
    "maximum kept": ({"maximum": 5}, {"type": "number", "maximum": 5}, [], _NO_WITNESS),
    "maximum made exclusive": (
        {"exclusiveMaximum": 5},
        {"type": "number", "maximum": 5},
        ["at the top level: the reader tightens exclusiveMaximum to 5 (writer: maximum 5)"],
        5,
    ),
    "integer below an exclusive maximum": (
        {"maximum": 4},
        {"type": "integer", "exclusiveMaximum": 5},
        [],
        _NO_WITNESS,
    ),
    "number below an exclusive maximum": (
        {"maximum": 4},
        {"type": "number", "exclusiveMaximum": 5},
        ["at the top level: the reader tightens maximum to 4 (writer: exclusiveMaximum 5)"],
        4.5,
    ),
    "integer above an exclusive minimum": (
        {"minimum": 1},
        {"type": "integer", "exclusiveMinimum": 0},
        [],
        _NO_WITNESS,
    ),
    "minimum added": (
        {"minimum": 5},
        {"type": "number"},
        ["at the top level: the reader tightens minimum to 5 (writer: none)"],
        4,
    ),
    "minimum raised": (
        {"minimum": 5},
        {"type": "number", "minimum": 0},
        ["at the top level: the reader tightens minimum to 5 (writer: minimum 0)"],
        0,
    ),
    "a non-integer number still meets minimum": (
        {"minimum": 5},
        {"type": "number", "not": I},
        ["at the top level: the reader tightens minimum to 5 (writer: none)"],
        0.5,
    ),
    "number keywords on strings": ({"minimum": 5, "multipleOf": 2}, S, [], _NO_WITNESS),
    "multipleOf 1 on integers": ({"multipleOf": 1}, I, [], _NO_WITNESS),
    "multipleOf 1 on numbers": (
        {"multipleOf": 1},
        {"type": "number"},
        ["at the top level: the reader adds multipleOf 1 (writer: none)"],
        0.5,
    ),
    "multipleOf 2 on integers": (
        {"multipleOf": 2},
        I,
        ["at the top level: the reader adds multipleOf 2 (writer: none)"],
        1,
    ),
    "multipleOf against two writer steps": (
        {"multipleOf": 5},
        {"allOf": [{"multipleOf": 2}, {"multipleOf": 3}]},
        ["at the top level: the reader adds multipleOf 5 (writer: 3, 2)"],
        6,
    ),
    # Values the scalar verdicts cannot judge (is 0.3 a multiple of 0.1 in floating point?)
    # leave the number keywords to the general comparison.
    "a fractional step over fractional values": (
        {"multipleOf": 0.1},
        {"enum": [0.3]},
        ["at the top level: the reader adds multipleOf 0.1 (writer: none)"],
        0.3,
    ),
    # Strings.
    "format added": (
        {**S, "format": "ipv4"},
        S,
        ["at the top level: the reader adds or changes format 'ipv4'"],
        "x",
    ),
    # Types: restricting "any" names the types kept, as given.
    "type list on any": (
        {"type": ["integer", "string"]},
        {},
        [
            "at the top level: the reader restricts the type to ['integer', 'string'], "
            "the writer allowed any"
        ],
        None,
    ),
    "type name on any": (
        S,
        {},
        ["at the top level: the reader restricts the type to ['string'], the writer allowed any"],
        None,
    ),
    # Values: enum and const the writer did not restrict, or compared value by value
    # (arrays and objects cannot be judged by the scalar verdicts).
    "enum added": (
        {"enum": [1, 2]},
        I,
        ["at the top level: the reader adds enum [1, 2], the writer did not restrict the values"],
        3,
    ),
    "const added": (
        {"const": 5},
        I,
        ["at the top level: the reader adds const [5], the writer did not restrict the values"],
        3,
    ),
    "enum of arrays narrowed": (
        {"enum": [[1]]},
        {"enum": [[1], [2]]},
        ["at the top level: the reader's enum drops [[2]]"],
        [2],
    ),
    "const of an array": (
        {"const": [1]},
        {"enum": [[1], [2]]},
        ["at the top level: the reader's const drops [[2]]"],
        [2],
    ),
    "every reader part judged against finite values": (
        {"allOf": [I, {"minimum": 2}]},
        {"enum": [1, 2]},
        ["at the top level: the reader's minimum rejects [1], which the writer allows"],
        1,
    ),
    "every reader part judged, other order": (
        {"allOf": [{"minimum": 2}, I]},
        {"enum": [1, 2]},
        ["at the top level: the reader's minimum rejects [1], which the writer allows"],
        1,
    ),
    "const and enum both added": (
        {"const": 1, "enum": [1, 2]},
        I,
        [
            "at the top level: the reader adds const [1], the writer did not restrict the values",
            "at the top level: the reader adds enum [1, 2], the writer did not restrict the values",
        ],
        2,
    ),
    "two reader parts each rejecting a value": (
        {"allOf": [{"minimum": 2}, {"maximum": 1}]},
        {"enum": [1, 2]},
        [
            "at the top level: the reader's maximum rejects [2], which the writer allows",
            "at the top level: the reader's minimum rejects [1], which the writer allows",
        ],
        1,
    ),
    # Two drafts: nothing is taken as identical across them.
    "another draft": (
        draft2020(S),
        I,
        ["at the top level: the writer allows type integer, the reader does not"],
        1,
    ),
    # Arrays: every position, the rest, and positions the writer's maxItems rules out.
    "two positions": (
        {"items": [S, S]},
        {"type": "array", "items": [I, I]},
        [
            "at [0]: the writer allows type integer, the reader does not",
            "at [1]: the writer allows type integer, the reader does not",
        ],
        [1, 1],
    ),
    "the rest of the items": (
        {"items": S},
        {"type": "array", "items": I},
        ["at []: the writer allows type integer, the reader does not"],
        [1],
    ),
    "a closed tuple stays closed": (
        {"items": [I, I], "additionalItems": False},
        {"type": "array", "items": [I, I], "additionalItems": False},
        [],
        _NO_WITNESS,
    ),
    "a position beyond the writer's maxItems": (
        {"items": [I, S]},
        {"type": "array", "items": I, "maxItems": 1},
        [],
        _NO_WITNESS,
    ),
    "a closed tuple as long as the writer's maxItems": (
        array(prefixItems=[I, I], items=False),
        array(prefixItems=[I, I], maxItems=2),
        [],
        _NO_WITNESS,
    ),
    # Objects: names, patterns and other names, each at its place.
    "a property under two reader constraints": (
        obj(properties={"ab": S}, patternProperties={"^a": {"minimum": 0}}),
        obj(properties={"ab": I}),
        [
            "at ab: the writer allows type integer, the reader does not",
            "at ab: the reader tightens minimum to 0 (writer: none)",
            "at <^a>: the reader tightens minimum to 0 (writer: none)",
        ],
        {"ab": -1},
    ),
    "a property that fits, under a pattern that tightens": (
        obj(properties={"ab": I}, patternProperties={"^a": {"minimum": 0}}),
        obj(properties={"ab": I}),
        [
            "at ab: the reader tightens minimum to 0 (writer: none)",
            "at <^a>: the reader tightens minimum to 0 (writer: none)",
        ],
        {"ab": -1},
    ),
    "a property under additionalProperties": (
        {"additionalProperties": S},
        obj(properties={"a": I}),
        [
            "at a: the writer allows type integer, the reader does not",
            "at *: the reader restricts the type to ['string'], the writer allowed any",
        ],
        {"a": 1},
    ),
    "a property a pattern forbids": (
        {"patternProperties": {"^a": False}},
        obj(properties={"ab": I}),
        [
            "at ab: the reader forbids this property (patternProperties: false)",
            "at <^a>: the reader accepts nothing, the writer allows documents",
        ],
        {"ab": 1},
    ),
    "a property properties forbids": (
        {"properties": {"a": False}},
        obj(properties={"a": I}),
        ["at a: the reader forbids this property (properties: false)"],
        {"a": 1},
    ),
    "other names": (
        {"additionalProperties": S},
        obj(additionalProperties=I),
        ["at *: the writer allows type integer, the reader does not"],
        {"z": 1},
    ),
    "names matching a pattern": (
        {"patternProperties": {"^a": S}},
        obj(patternProperties={"^a": I}),
        ["at <^a>: the writer allows type integer, the reader does not"],
        {"a": 1},
    ),
    "a pattern below a property": (
        obj(properties={"o": obj(patternProperties={"^a": S})}),
        obj(properties={"o": obj(patternProperties={"^a": I})}),
        ["at o.<^a>: the writer allows type integer, the reader does not"],
        {"o": {"a": 1}},
    ),
    # Of several writer parts, the problems against the first one are reported (allOf
    # members are taken last first).
    "a pattern against two writer parts": (
        obj(patternProperties={"^a": {"type": "boolean"}}),
        {
            "allOf": [
                obj(patternProperties={"^a": {"type": ["integer", "null"]}}),
                obj(patternProperties={"^a": {"type": ["integer", "string"]}}),
            ]
        },
        [
            "at <^a>: the writer allows type integer, the reader does not",
            "at <^a>: the writer allows type string, the reader does not",
        ],
        {"a": 1},
    ),
    # A pattern Python's re cannot read (\p{L}) may or may not match: the writer's closed
    # model then says nothing about "a", and the reader's pattern binds "a" too.
    "a writer pattern that cannot be read": (
        obj(properties={"a": S}),
        obj(patternProperties={"\\p{L}": I}, additionalProperties=False),
        [
            "at a: property added to an open content model; old documents may hold any value "
            "under that name"
        ],
        _NO_WITNESS,  # jsonschema cannot read \p{L} either
    ),
    "a reader pattern that cannot be read": (
        obj(patternProperties={"\\p{L}": S}),
        obj(properties={"a": I}),
        [
            "at a: the writer allows type integer, the reader does not",
            "at <\\p{L}>: the reader restricts the type to ['string'], the writer allowed any",
        ],
        _NO_WITNESS,  # jsonschema cannot read \\p{L}
    ),
    # propertyNames.
    "propertyNames of every string": ({"propertyNames": S}, OBJ, [], _NO_WITNESS),
    "propertyNames added": (
        {"propertyNames": {"maxLength": 3}},
        OBJ,
        ["at the top level: the reader's propertyNames rejects names the writer allows"],
        {"abcd": 1},
    ),
    "propertyNames within the writer's": (
        {"propertyNames": {"maxLength": 3}},
        obj(propertyNames={"maxLength": 2}),
        [],
        _NO_WITNESS,
    ),
    "propertyNames of a closed model's names": (
        {"propertyNames": {"maxLength": 2}},
        obj(properties={"ab": I, "toolong": False}, additionalProperties=False),
        [],
        _NO_WITNESS,
    ),
    # Dependencies: every entry, at its place.
    "a dependency after one that accepts anything": (
        {"dependencies": {"a": {}, "b": ["c"]}},
        OBJ,
        [
            "at the top level: the reader's dependencies for 'b' rejects objects with 'b' the "
            "writer allows (the reader requires ['c'], the writer did not)"
        ],
        {"b": 1},
    ),
    "a dependency below a property": (
        obj(properties={"o": {"dependencies": {"b": ["c"]}}}),
        obj(properties={"o": OBJ}),
        [
            "at o: the reader's dependencies for 'b' rejects objects with 'b' the writer allows "
            "(the reader requires ['c'], the writer did not)"
        ],
        {"o": {"b": 1}},
    ),
    "a dependency on the property itself": (
        draft2020({"dependentSchemas": {"a": {"required": ["a"]}}}),
        draft2020(OBJ),
        [],
        _NO_WITNESS,
    ),
    # not: excluding nothing, or only what the writer never allows.
    "not false": ({"not": False}, I, [], _NO_WITNESS),
    "not a value the writer lists": ({"not": {"enum": [3]}}, {"enum": [1, 2]}, [], _NO_WITNESS),
    "not a type the writer's values have": (
        {"not": I},
        {"enum": [1, 2]},
        ["at the top level: the reader's not rejects [1, 2], which the writer allows"],
        1,
    ),
    "not a value beyond the writer's maximum": (
        {"not": {"const": 5}},
        {"type": "integer", "maximum": 3},
        [],
        _NO_WITNESS,
    ),
    "not a float the writer's minimum excludes": (
        {"not": {"const": 2.0}},
        {"type": "integer", "minimum": 3},
        [],
        _NO_WITNESS,
    ),
    "not what unevaluatedProperties sees evaluated": (
        draft2020(
            {
                "not": obj(
                    required=["a"], anyOf=[{"properties": {"a": True}}], unevaluatedProperties=False
                )
            }
        ),
        draft2020(obj(properties={"a": I}, required=["a"], additionalProperties=False)),
        ["at the top level: the reader's not excludes documents the writer allows"],
        {"a": 1},
    ),
    "not a value the writer's untyped maximum excludes": (
        {"not": {"const": 5}},
        {"maximum": 3},
        [],
        _NO_WITNESS,
    ),
    "not a typed float the writer's minimum excludes": (
        {"not": {"type": "number", "const": 2.0}},
        {"type": "integer", "minimum": 3},
        [],
        _NO_WITNESS,
    ),
    # A step the verdicts cannot judge sends the part to the general comparison, where the
    # writer's values still show the not excludes none of them.
    "not a value, beside a step the verdicts cannot judge": (
        {"multipleOf": 0.1, "not": {"const": 0.5}},
        {"enum": [0.3]},
        ["at the top level: the reader adds multipleOf 0.1 (writer: none)"],
        0.3,
    ),
    "not a range none of the writer's values is in, beside such a step": (
        {"multipleOf": 0.1, "not": {"minimum": 1}},
        {"enum": [0.3]},
        ["at the top level: the reader adds multipleOf 0.1 (writer: none)"],
        0.3,
    ),
    # Several logic keywords: each reports.
    "not and oneOf": (
        {"not": I, "oneOf": [S, {"type": "boolean"}]},
        I,
        [
            "at the top level: the reader's not excludes documents the writer allows",
            "at the top level: no alternative of the reader's oneOf accepts everything the "
            "writer allows (nearest, alternative 0: at the top level: the writer allows type "
            "integer, the reader does not)",
        ],
        1,
    ),
    "not and if": (
        {"not": I, "if": I, "then": {"minimum": 0}},
        I,
        [
            "at the top level: the reader's not excludes documents the writer allows",
            "at the top level: the reader's then (under its if) rejects documents the writer "
            "allows",
        ],
        -1,
    ),
    "an empty anyOf": (
        {"anyOf": []},
        I,
        [
            "at the top level: no alternative of the reader's anyOf accepts everything the writer "
            "allows"
        ],
        _NO_WITNESS,  # the meta-schema wants anyOf non-empty, so validators refuse the schema
    ),
    "nested anyOf": ({"anyOf": [{"anyOf": [S, I]}]}, I, [], _NO_WITNESS),
    # Remote references: the same one (URL or URN) on both sides, or not followed.
    "the same remote $ref": (
        obj(properties={"a": {"$ref": "https://example.org/s.json"}}),
        obj(properties={"a": {"$ref": "https://example.org/s.json"}}, required=["a"]),
        [],
        _NO_WITNESS,
    ),
    "the same URN $ref": (
        obj(properties={"a": {"$ref": "urn:example:s"}}),
        obj(properties={"a": {"$ref": "urn:example:s"}}, required=["a"]),
        [],
        _NO_WITNESS,
    ),
    "another remote $ref": (
        obj(properties={"a": {"$ref": "https://example.org/s.json"}}),
        obj(properties={"a": {"$ref": "https://example.org/t.json"}}),
        [
            "at a: the reader's $ref 'https://example.org/s.json' cannot be followed, so it is "
            "not known to accept the writer's documents"
        ],
        _NO_WITNESS,  # resolving would need the network
    ),
    # Recursion: a recursive writer against a reader unrolled three levels.
    "a recursive writer": (
        obj(properties={"a": obj(properties={"a": obj(properties={"a": S})})}),
        {"$defs": {"n": obj(properties={"a": {"$ref": "#/$defs/n"}})}, "$ref": "#/$defs/n"},
        ["at a.a.a: the writer allows type object, the reader does not"],
        {"a": {"a": {"a": {}}}},
    ),
    "a recursive writer, read as objects": (
        obj(properties={"a": obj(properties={"a": OBJ})}),
        {"$defs": {"n": obj(properties={"a": {"$ref": "#/$defs/n"}})}, "$ref": "#/$defs/n"},
        [],
        _NO_WITNESS,
    ),
    "a $ref cycle that does not descend": (
        {"type": "array", "contains": {"$ref": "#"}},
        {"type": "array", "contains": {"$ref": "#"}, "minItems": 1},
        [
            "at the top level: the schemas are too complex to compare (a $ref cycle that does "
            "not descend)"
        ],
        _NO_WITNESS,  # not a refusal the schemas show: the checker cannot tell, and says so
    ),
}


@pytest.mark.parametrize(
    ("reader", "writer", "expected", "witness"), EXACT.values(), ids=list(EXACT)
)
def test_each_reason_word_for_word(reader, writer, expected, witness):
    assert json_problems(reader, writer) == expected
    if witness is not _NO_WITNESS and expected:
        assert _valid(writer, witness), "the witness is no document of the writer"
        assert not _valid(reader, witness), "the witness passes the reader"


def test_the_budget_counts_one_step_per_comparison(monkeypatch):
    from schemas import compat_json

    reader, writer = obj(properties={"a": S}), obj(properties={"a": I})
    # Two comparisons: the top level and property a.
    real = compat_json._Budget
    monkeypatch.setattr(compat_json, "_Budget", lambda: real(steps=2))
    assert json_problems(reader, writer) == [
        "at a: the writer allows type integer, the reader does not"
    ]
    monkeypatch.setattr(compat_json, "_Budget", lambda: real(steps=1))
    assert json_problems(reader, writer) == [
        "at a: the schemas are too complex to compare (too many combinations or too deep)"
    ]


def test_the_depth_limit_counts_the_comparisons_under_way(monkeypatch):
    from schemas import compat_json

    def nested(leaf: Any, depth: int) -> Any:
        for _ in range(depth):
            leaf = obj(properties={"a": leaf})
        return leaf

    monkeypatch.setattr(compat_json, "_MAX_DEPTH", 2)
    assert json_problems(nested(S, 2), nested(I, 2)) == [
        "at a.a: the writer allows type integer, the reader does not"
    ]
    assert json_problems(nested(S, 3), nested(I, 3)) == [
        "at a.a.a: the schemas are too complex to compare (too many combinations or too deep)"
    ]


# --- Relaxing never breaks -----------------------------------------------------------------
#
# The property test (test_compat_json_property.py) checks that what the checker accepts is
# safe. This one checks the other way for a class of changes known to be safe by
# construction: a reader made from the writer by widening types, moving bounds outwards,
# adding enum values, dropping required names, opening a closed model or adding an anyOf
# alternative, at any depth, must be accepted with no problem.

_relaxed_bound = st.integers(min_value=0, max_value=3)


@st.composite
def _number_pair(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    kind = draw(st.sampled_from(["integer", "number"]))
    writer: dict[str, Any] = {"type": kind}
    reader: dict[str, Any] = {"type": draw(st.sampled_from([kind, "number", [kind, "string"]]))}
    low, high = draw(st.integers(-5, 5)), draw(st.integers(5, 15))
    for name, value, sign in (("minimum", low, -1), ("maximum", high, 1)):
        exclusive = "exclusiveM" + name[1:]
        if draw(st.booleans()):
            key = draw(st.sampled_from([name, exclusive]))
            writer[key] = value
            if draw(st.booleans()):  # kept, moved outwards, or made inclusive
                reader[draw(st.sampled_from([key, name]))] = value + sign * draw(_relaxed_bound)
    if draw(st.booleans()):
        step = draw(st.sampled_from([2, 3, 6]))
        writer["multipleOf"] = step
        if draw(st.booleans()):
            reader["multipleOf"] = draw(st.sampled_from([d for d in (1, 2, 3, 6) if step % d == 0]))
    return writer, reader


@st.composite
def _string_pair(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    writer: dict[str, Any] = {"type": "string"}
    reader: dict[str, Any] = {"type": draw(st.sampled_from(["string", ["string", "null"]]))}
    if draw(st.booleans()):
        writer["minLength"] = least = draw(st.integers(0, 4))
        if draw(st.booleans()):
            reader["minLength"] = max(0, least - draw(_relaxed_bound))
    if draw(st.booleans()):
        writer["maxLength"] = most = draw(st.integers(4, 8))
        if draw(st.booleans()):
            reader["maxLength"] = most + draw(_relaxed_bound)
    for keyword, value in (("pattern", "^[a-z]"), ("format", "date")):
        if draw(st.booleans()):
            writer[keyword] = value
            if draw(st.booleans()):
                reader[keyword] = value
    return writer, reader


@st.composite
def _enum_pair(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    pool = [None, True, 0, 1, 2.5, "a", "b", [1], {"k": 1}]
    values = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique_by=repr))
    extra = draw(st.lists(st.sampled_from(pool), max_size=2, unique_by=repr))
    writer = {"const": values[0]} if len(values) == 1 and draw(st.booleans()) else {"enum": values}
    reader_values = values + [v for v in extra if repr(v) not in map(repr, values)]
    return writer, {"enum": draw(st.permutations(reader_values))}


def _pairs(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(_array_pair(children), _object_pair(children), _any_of_pair(children))


@st.composite
def _array_pair(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> tuple[dict, dict]:
    item_writer, item_reader = draw(children)
    writer: dict[str, Any] = {"type": "array", "items": item_writer}
    reader: dict[str, Any] = {"type": "array", "items": item_reader}
    if draw(st.booleans()):
        writer["minItems"] = least = draw(st.integers(0, 3))
        if draw(st.booleans()):
            reader["minItems"] = max(0, least - draw(_relaxed_bound))
    if draw(st.booleans()):
        writer["maxItems"] = most = draw(st.integers(3, 6))
        if draw(st.booleans()):
            reader["maxItems"] = most + draw(_relaxed_bound)
    if draw(st.booleans()):
        writer["uniqueItems"] = True
        if draw(st.booleans()):
            reader["uniqueItems"] = True
    return writer, reader


@st.composite
def _object_pair(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> tuple[dict, dict]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    pairs = {name: draw(children) for name in names}
    writer: dict[str, Any] = {"type": "object", "properties": {n: w for n, (w, _) in pairs.items()}}
    reader: dict[str, Any] = {"type": "object", "properties": {n: r for n, (_, r) in pairs.items()}}
    required = draw(st.lists(st.sampled_from(names), unique=True))
    if required:
        writer["required"] = required
        kept = draw(st.lists(st.sampled_from(required), unique=True))
        if kept:
            reader["required"] = kept
    if draw(st.booleans()):
        writer["additionalProperties"] = False
        reader_other = draw(st.sampled_from([None, False, True, {"type": "string"}]))
        if reader_other is not None:
            reader["additionalProperties"] = reader_other
    if draw(st.booleans()):
        writer["maxProperties"] = most = draw(st.integers(3, 5))
        if draw(st.booleans()):
            reader["maxProperties"] = most + draw(_relaxed_bound)
    return writer, reader


@st.composite
def _any_of_pair(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> tuple[dict, dict]:
    writer, reader = draw(children)
    other = draw(st.sampled_from([{"type": "null"}, {"type": "boolean"}, {"const": "x"}]))
    options = draw(st.permutations([reader, other]))
    return writer, {"anyOf": options}


_relaxations = st.recursive(
    st.one_of(_number_pair(), _string_pair(), _enum_pair()), _pairs, max_leaves=6
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_relaxations)
def test_a_reader_that_only_relaxes_the_writer_is_accepted(pair):
    writer, reader = pair
    assert json_problems(reader, writer) == []
