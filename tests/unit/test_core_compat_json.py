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
    return jsonschema.validators.validator_for(schema)(schema).is_valid(document)


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
