"""JSON Schema compatibility, keyword by keyword: what BACKWARD allows and what it must reject.

``ok(new, old)``: a consumer using ``new`` reads every document written with ``old``.
"""

from __future__ import annotations

import pytest

from schemas.compat_json import json_problems

DRAFT_2020 = "https://json-schema.org/draft/2020-12/schema"
STRING, INTEGER, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}
SHORT = {"maxLength": 4}


def ok(new, old) -> bool:
    return not json_problems(new, old)


def later(**schema):
    """A draft 2020-12 schema."""
    return {"$schema": DRAFT_2020, **schema}


def field(schema):
    return {"type": "object", "properties": {"code": schema}}


# --- 1. allOf: a conjunction, whatever the order or repetition ----------------------------


def test_all_of_members_may_repeat_or_move():
    assert ok(field({"allOf": [STRING]}), field({"allOf": [STRING, STRING]}))
    assert ok(field({"allOf": [STRING, STRING]}), field({"allOf": [STRING]}))
    codes = {"enum": ["ab", "cd"]}
    assert ok({"allOf": [SHORT, codes, STRING]}, {"allOf": [STRING, SHORT, codes]})


def test_all_of_on_the_writer_side_counts_every_member():
    old = {"allOf": [STRING, {"enum": ["ab", "cd"]}]}
    assert ok(STRING, old)
    assert ok({"enum": ["ab", "cd", "ef"]}, old)
    assert ok({"type": "string", "maxLength": 2}, old)  # every value the writer allows fits


def test_all_of_may_become_a_wider_any_of_or_one_of():
    assert ok(field({"anyOf": [NUMBER, STRING]}), field({"allOf": [STRING]}))
    assert ok(field({"oneOf": [NUMBER, STRING]}), field({"allOf": [STRING]}))
    assert ok(field({"anyOf": [STRING]}), field({"allOf": [INTEGER, STRING]}))  # old: empty


def test_all_of_changes_that_narrow_are_rejected():
    assert json_problems({"allOf": [STRING, SHORT]}, {"allOf": [STRING]}) == [
        "at the top level: the reader tightens maxLength to 4 (writer: none)"
    ]
    assert not ok(field({"allOf": [NUMBER, STRING]}), field({"anyOf": [STRING]}))
    old = {"allOf": [STRING, {"enum": ["ab", "cd"]}]}
    assert not ok({"allOf": [{"enum": ["ab"]}, STRING]}, old)
    assert json_problems({"allOf": [STRING, {"enum": ["ab"]}]}, STRING) == [
        'at the top level: the reader adds enum ["ab"], the writer did not restrict the values'
    ]


def test_any_of_the_writer_allows_must_each_be_read():
    problems = json_problems(field({"anyOf": [STRING]}), field({"anyOf": [NUMBER, STRING]}))
    assert problems == [
        "at code: no alternative of the reader's anyOf accepts everything the writer allows "
        "(nearest, alternative 0: at code: the writer allows type number, the reader does not)"
    ]
    nullable = {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 5}]}
    shorter = {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]}
    assert json_problems(field(shorter), field(nullable)) == [
        "at code: no alternative of the reader's anyOf accepts everything the writer allows "
        "(nearest, alternative 1: at code: the reader tightens maxLength to 3 (writer: 5))"
    ]


def test_one_of_alternatives_must_not_overlap_on_the_writers_documents():
    assert ok({"oneOf": [{"type": "null"}, STRING]}, STRING)
    assert json_problems({"oneOf": [STRING, SHORT]}, STRING) == [
        "at the top level: documents the writer allows may match several alternatives of the "
        "reader's oneOf"
    ]


# --- 2. not, dependencies: compared by meaning, not by text -------------------------------


def test_not_may_exclude_less():
    assert ok({"not": INTEGER}, {"not": NUMBER})
    assert ok({"not": STRING}, INTEGER)  # the writer's integers are never strings


def test_not_may_not_exclude_more():
    assert json_problems({"not": NUMBER}, {"not": INTEGER}) == [
        "at the top level: the reader's not excludes documents the writer allows"
    ]
    assert not ok({"not": STRING}, {})


def test_dependencies_may_be_removed():
    old = {"dependencies": {"unit": ["value"], "at": ["tz"]}}
    assert ok({"dependencies": {"unit": ["value"]}}, old)
    assert ok({}, {"dependencies": {"unit": {"required": ["value"]}}})
    assert ok(later(dependentSchemas={}), later(dependentSchemas={"unit": {"required": ["value"]}}))
    assert ok(later(dependentRequired={}), later(dependentRequired={"unit": ["value"]}))


def test_dependencies_may_not_be_added_or_narrowed():
    assert json_problems({"dependencies": {"unit": ["value"]}}, {}) == [
        "at the top level: the reader's dependencies for 'unit' rejects objects with 'unit' the "
        "writer allows (the reader requires ['value'], the writer did not)"
    ]
    narrowed = later(dependentSchemas={"unit": {"required": ["value", "scale"]}})
    assert not ok(narrowed, later(dependentSchemas={"unit": {"required": ["value"]}}))
    swapped = later(dependentRequired={"scale": ["unit"]})
    assert not ok(swapped, later(dependentRequired={"unit": ["scale"]}))


def test_a_dependency_the_writer_always_meets_may_be_added():
    old = {"type": "object", "required": ["unit", "value"]}
    assert ok({**old, "dependencies": {"unit": ["value"]}}, old)


# --- 3. closed content models ---------------------------------------------------------------


def test_a_property_the_writer_forbade_may_be_dropped_from_a_closed_model():
    old = {"additionalProperties": False, "properties": {"id": INTEGER, "legacy": False}}
    assert ok({"additionalProperties": False, "properties": {"id": INTEGER}}, old)


def test_a_removed_property_still_covered_by_a_pattern_is_compatible():
    old = {"additionalProperties": False, "properties": {"n_1": INTEGER}}
    new = {"additionalProperties": False, "patternProperties": {"^n_": NUMBER}}
    assert ok(new, old)


def test_a_removed_property_the_pattern_does_not_accept_is_rejected():
    old = {"additionalProperties": False, "properties": {"n_1": INTEGER, "s_1": STRING}}
    new = {"additionalProperties": False, "patternProperties": {"^n_": STRING, "^s_": STRING}}
    assert json_problems(new, old) == [
        "at n_1: the writer allows type integer, the reader does not"
    ]
    removed = {"additionalProperties": False, "patternProperties": {"^s_": STRING}}
    assert json_problems(removed, old) == [
        "at n_1: property removed from a closed content model (additionalProperties: false)"
    ]


def test_a_property_added_where_the_old_pattern_applied_must_fit_the_pattern():
    old = {"additionalProperties": False, "patternProperties": {"^n_": INTEGER}}
    assert ok({**old, "properties": {"n_1": NUMBER}}, old)
    assert not ok({**old, "properties": {"n_1": STRING}}, old)


def test_unevaluated_properties_closes_the_model_in_2020_12():
    old = later(properties={"id": INTEGER}, unevaluatedProperties=False)
    assert ok(later(properties={"id": INTEGER, "note": STRING}, unevaluatedProperties=False), old)
    assert ok(later(properties={"id": INTEGER}), old)


def test_unevaluated_properties_rejections():
    open_model = later(properties={"id": INTEGER})
    closed = later(properties={"id": INTEGER}, unevaluatedProperties=False)
    assert json_problems(closed, open_model) == [
        "at the top level: the reader closes the content model (unevaluatedProperties: false)"
    ]
    partly_open = later(properties={"id": INTEGER}, unevaluatedProperties=STRING)
    added = later(properties={"id": INTEGER, "note": NUMBER}, unevaluatedProperties=STRING)
    assert json_problems(added, partly_open) == [
        "at note: the writer allows type string, the reader does not"
    ]


def test_unevaluated_properties_sees_properties_of_all_of_members():
    member = {"properties": {"note": STRING}}
    old = later(properties={"id": INTEGER}, allOf=[member], unevaluatedProperties=False)
    assert ok(old, later(properties={"id": INTEGER, "note": STRING}, additionalProperties=False))


def test_properties_added_to_an_open_model_are_still_rejected():
    assert json_problems({"properties": {"id": INTEGER}}, {}) == [
        "at id: property added to an open content model; old documents may hold any value "
        "under that name"
    ]


# --- 4. arrays: positions, contains -------------------------------------------------------


def test_a_tuple_may_grow_by_a_position_the_old_rest_schema_allowed():
    old = {"type": "array", "items": [STRING, INTEGER], "additionalItems": STRING}
    assert ok({"type": "array", "items": [STRING, INTEGER, STRING], "additionalItems": STRING}, old)
    either = {"type": ["string", "integer"]}
    assert ok({"type": "array", "items": [STRING], "additionalItems": either}, old)


def test_a_tuple_growing_or_shrinking_against_the_rest_schema_is_rejected():
    two = {"type": "array", "items": [STRING, INTEGER], "additionalItems": STRING}
    three = {"type": "array", "items": [STRING, INTEGER, INTEGER], "additionalItems": STRING}
    # ["a", 1, "x"] was valid and no longer is; and the other way round with ["a", 1, 2].
    assert json_problems(three, two) == [
        "at [2]: the writer allows type string, the reader does not"
    ]
    assert json_problems(two, three) == [
        "at [2]: the writer allows type integer, the reader does not"
    ]


def test_prefix_items_and_unevaluated_items_grow_the_same_way():
    for rest in ("items", "unevaluatedItems"):
        two = later(type="array", prefixItems=[STRING, INTEGER], **{rest: STRING})
        three = later(type="array", prefixItems=[STRING, INTEGER, INTEGER], **{rest: STRING})
        assert not ok(three, two), rest
        assert not ok(two, three), rest
        same_rest = later(type="array", prefixItems=[STRING, INTEGER, STRING], **{rest: STRING})
        assert ok(same_rest, two), rest


def test_a_closed_tuple_rejects_longer_arrays():
    old = later(type="array", prefixItems=[STRING])
    assert json_problems(later(type="array", prefixItems=[STRING], items=False), old) == [
        "at the top level: the reader allows at most 1 items (items: false), the writer allows more"
    ]


def test_additional_items_without_a_tuple_means_nothing():
    assert ok({"additionalItems": False}, {"additionalItems": True})
    strings = {"type": "array", "items": STRING}
    assert ok({**strings, "additionalItems": NUMBER}, strings)


def test_min_contains_may_fall_not_rise():
    old = later(type="array", contains=INTEGER, minContains=2)
    assert ok(later(type="array", contains=INTEGER, minContains=1), old)
    assert ok(later(type="array", contains=NUMBER), old)
    assert json_problems(later(type="array", contains=INTEGER, minContains=3), old) == [
        "at the top level: the reader requires 3 item(s) matching contains (contains/minContains), "
        "the writer does not guarantee them"
    ]


def test_max_contains_may_rise_not_fall():
    old = later(type="array", contains=INTEGER, maxContains=2)
    assert ok(later(type="array", contains=INTEGER, maxContains=3), old)
    assert json_problems(later(type="array", contains=INTEGER, maxContains=1), old) == [
        "at the top level: the reader allows at most 1 item(s) matching contains (maxContains), "
        "the writer allows more"
    ]


# --- what stays as it was -----------------------------------------------------------------


def test_required_names_must_have_been_required():
    # Confluent accepts this change; a document without "serial" was valid and is not any more.
    assert json_problems({"required": ["serial"]}, {"required": ["id"]}) == [
        "at the top level: the reader requires ['serial'], the writer did not"
    ]


REASONS = [
    (INTEGER, NUMBER, "the writer allows type number, the reader does not"),
    (
        {"type": "string", "minLength": 2},
        STRING,
        "the reader tightens minLength to 2 (writer: none)",
    ),
    ({"multipleOf": 4}, {"multipleOf": 2}, "the reader adds multipleOf 4 (writer: 2)"),
    ({"pattern": "^x"}, STRING, "the reader adds or changes pattern '^x'"),
    ({"uniqueItems": True}, {"type": "array"}, "the reader adds uniqueItems"),
    (
        {"enum": ["ab"]},
        {"enum": ["ab", "cd"]},
        'the reader\'s enum rejects ["cd"], which the writer allows',
    ),
    (
        {"if": {"required": ["unit"]}, "then": {"required": ["value"]}},
        {},
        "the reader's then (under its if) rejects documents the writer allows",
    ),
    (
        {"$ref": "https://example.com/unit.json"},
        {},
        "the reader's $ref 'https://example.com/unit.json' cannot be followed, so it is not known "
        "to accept the writer's documents",
    ),
    (False, {}, "the reader accepts nothing, the writer allows documents"),
]


@pytest.mark.parametrize(("new", "old", "reason"), REASONS)
def test_reasons_name_the_place_and_keyword(new, old, reason):
    assert json_problems(new, old) == [f"at the top level: {reason}"]


def test_a_local_ref_that_leads_nowhere_is_reported_wherever_it_is():
    # A validator cannot use such a schema at all (fastjsonschema does not compile it).
    assert json_problems({"anyOf": [{"$ref": "#/$defs/gone"}, True]}, {}) == [
        "the reader's $ref '#/$defs/gone' does not resolve in the reader"
    ]
    anchored = later(**{"$defs": {"n": {"$anchor": "num", "type": "number"}}, "$ref": "#num"})
    assert ok(anchored, INTEGER)


def test_a_remote_ref_matches_only_the_same_remote_ref():
    unit = {"$ref": "https://example.com/unit.json"}
    assert ok(field(unit), field(unit))


def test_a_value_that_is_no_schema_is_reported():
    assert json_problems({"properties": {"id": 3}}, {}) == [
        "not a JSON Schema: 3 is not a schema (an object or a boolean)"
    ]


def test_relaxing_is_compatible():
    assert ok({"type": "string", "maxLength": 10}, {"type": "string", "maxLength": 5})
    assert ok({"multipleOf": 2}, {"multipleOf": 6})
    assert ok({"type": "integer", "exclusiveMinimum": 0}, {"type": "integer", "minimum": 1})
    conditional = {"if": {"required": ["unit"]}, "then": {"required": ["value"]}}
    assert ok(conditional, {"required": ["unit", "value"]})


def test_draft_04_exclusive_bounds_are_read_as_booleans():
    draft4 = "http://json-schema.org/draft-04/schema#"
    strict = {"$schema": draft4, "minimum": 0, "exclusiveMinimum": True}
    assert not ok(strict, {"$schema": draft4, "minimum": 0})
    assert ok({"$schema": draft4, "minimum": 0}, strict)


def test_ref_siblings_count_from_2019_09_only():
    defs = {"$defs": {"id": INTEGER}}
    positive = later(**defs, allOf=[{"$ref": "#/$defs/id", "minimum": 1}])
    assert not ok(positive, later(**defs, allOf=[{"$ref": "#/$defs/id"}]))
    # Before 2019-09 a $ref replaces its siblings: the old schema did not hold "minimum" at all.
    old = {**defs, "$ref": "#/$defs/id", "minimum": 1}
    assert not ok({**defs, "minimum": 1, "type": "integer"}, old)


def test_recursive_schemas_are_compared_level_by_level():
    def tree(value):
        node = {"type": "object", "properties": {"kid": {"$ref": "#/$defs/node"}, "v": value}}
        return {"$ref": "#/$defs/node", "$defs": {"node": node}}

    assert ok(tree(NUMBER), tree(INTEGER))
    assert "at kid.v: the writer allows type number, the reader does not" in json_problems(
        tree(INTEGER), tree(NUMBER)
    )


def test_identical_schemas_are_compatible():
    schema = later(anyOf=[{"properties": {"a": STRING}}], unevaluatedProperties=False)
    assert ok(schema, dict(schema))
