"""Compatibility rules, one test per rule, against known compatible/incompatible pairs."""

import json

import pytest

from schemas.base import RegisteredSchema
from schemas.compat_avro import avro_problems
from schemas.compat_json import json_problems
from schemas.compatibility import check_candidate, check_subject
from schemas.registry import LocalFileRegistry


def record(*fields, name="R", **extra):
    return {"type": "record", "name": name, "fields": list(fields), **extra}


def field(name, type_, **extra):
    return {"name": name, "type": type_, **extra}


def can_read(reader, writer):
    return not avro_problems(reader, writer)


# --- Avro: schema resolution ---------------------------------------------------------------


def test_avro_adding_a_field_with_a_default_is_full_compatible():
    old = record(field("a", "int"))
    new = record(field("a", "int"), field("b", "string", default=""))
    assert can_read(new, old) and can_read(old, new)


def test_avro_adding_a_field_without_default_breaks_backward_only():
    old = record(field("a", "int"))
    new = record(field("a", "int"), field("b", "string"))
    assert not can_read(new, old)
    assert can_read(old, new)


def test_avro_removing_a_field_without_default_breaks_forward_only():
    old = record(field("a", "int"), field("b", "string"))
    new = record(field("a", "int"))
    assert can_read(new, old)
    assert not can_read(old, new)


def test_avro_numeric_promotions_widen_but_never_narrow():
    widening = [("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
                ("long", "double"), ("float", "double")]  # fmt: skip
    for writer, reader in widening:
        assert can_read(record(field("a", reader)), record(field("a", writer))), (writer, reader)
        assert not can_read(record(field("a", writer)), record(field("a", reader))), (reader,)


def test_avro_string_and_bytes_read_each_other():
    assert can_read(record(field("a", "bytes")), record(field("a", "string")))
    assert can_read(record(field("a", "string")), record(field("a", "bytes")))


def test_avro_unrelated_types_are_incompatible_and_the_message_names_the_field():
    problems = avro_problems(record(field("a", "int")), record(field("a", "string")))
    assert problems == ["at R.a: writer type string cannot be read as int"]


def test_avro_enum_symbols_the_reader_lacks_need_a_reader_default():
    old = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    new = {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}
    assert can_read(new, old)
    assert not can_read(old, new)
    assert can_read({**old, "default": "A"}, new)


def test_avro_records_match_by_name_or_alias():
    renamed = record(field("a", "int"), name="Renamed")
    assert not can_read(renamed, record(field("a", "int")))
    assert can_read({**renamed, "aliases": ["R"]}, record(field("a", "int")))
    assert can_read(
        record(field("a", "int"), name="ns.R"), record(field("a", "int"), name="other.R")
    )


def test_avro_field_aliases_allow_a_rename():
    old = record(field("speed", "double"))
    assert not can_read(record(field("speed_kph", "double")), old)
    assert can_read(record(field("speed_kph", "double", aliases=["speed"])), old)


def test_avro_unions_branch_by_branch():
    optional = ["null", "string"]
    assert can_read(record(field("a", optional)), record(field("a", "string")))
    assert not can_read(record(field("a", "string")), record(field("a", optional)))
    assert can_read(record(field("a", ["null", "string", "int"])), record(field("a", optional)))
    assert not can_read(record(field("a", optional)), record(field("a", ["null", "int"])))


def test_avro_fixed_sizes_must_match():
    assert not can_read(
        {"type": "fixed", "name": "F", "size": 16}, {"type": "fixed", "name": "F", "size": 8}
    )


def test_avro_arrays_and_maps_resolve_their_items():
    assert can_read({"type": "array", "items": "long"}, {"type": "array", "items": "int"})
    assert not can_read({"type": "map", "values": "int"}, {"type": "map", "values": "long"})


def test_avro_nested_and_recursive_records_are_checked_through_references():
    node = record(field("value", "int"), field("next", ["null", "Node"]), name="Node")
    assert can_read(node, node)
    wider = record(field("value", "long"), field("next", ["null", "Node"]), name="Node")
    assert can_read(wider, node) and not can_read(node, wider)
    outer = record(field("inner", record(field("x", "int"), name="Inner")), name="Outer")
    changed = record(field("inner", record(field("x", "string"), name="Inner")), name="Outer")
    assert avro_problems(changed, outer) == [
        "at Outer.inner.x: writer type int cannot be read as string"
    ]


def test_avro_logical_types_resolve_by_their_underlying_type():
    millis = {"type": "long", "logicalType": "timestamp-millis"}
    assert can_read(record(field("ts", millis)), record(field("ts", "long")))


def test_invalid_avro_is_reported_not_raised():
    assert avro_problems({"type": "nope"}, "int") == ["not a valid Avro schema: {'type': 'nope'}"]
    dangling = record(field("a", "Missing"))
    assert avro_problems("int", dangling) == ["not a valid Avro schema: Missing"]


# --- JSON Schema: Confluent's rules ---------------------------------------------------------


def obj(properties, *, required=(), closed=False, **extra):
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def backward_ok(new, old):
    return not json_problems(new, old)


STRING, INTEGER, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "number"}


def test_json_optional_property_added_to_a_closed_model_is_compatible():
    assert backward_ok(
        obj({"a": STRING, "b": STRING}, closed=True), obj({"a": STRING}, closed=True)
    )


def test_json_property_added_to_an_open_model_is_incompatible():
    problems = json_problems(obj({"a": STRING, "b": STRING}), obj({"a": STRING}))
    assert problems == [
        "at b: property added to an open content model; old documents may hold any value "
        "under that name"
    ]


def test_json_property_covered_by_a_partially_open_model_is_compatible():
    old = obj({"a": STRING}, additionalProperties=STRING)
    assert backward_ok(obj({"a": STRING, "b": STRING}, additionalProperties=STRING), old)
    assert not backward_ok(obj({"a": STRING, "b": INTEGER}, additionalProperties=STRING), old)


def test_json_newly_required_property_is_incompatible():
    old = obj({"a": STRING, "b": STRING}, closed=True)
    assert not backward_ok(obj({"a": STRING, "b": STRING}, required=["b"], closed=True), old)
    assert backward_ok(old, obj({"a": STRING, "b": STRING}, required=["b"], closed=True))


def test_json_property_removed_from_open_model_is_compatible_from_closed_is_not():
    assert backward_ok(obj({"a": STRING}), obj({"a": STRING, "b": STRING}))
    assert not backward_ok(
        obj({"a": STRING}, closed=True), obj({"a": STRING, "b": STRING}, closed=True)
    )


def test_json_closing_the_content_model_is_incompatible():
    assert not backward_ok(obj({"a": STRING}, closed=True), obj({"a": STRING}))


def test_json_integer_widens_to_number_but_not_back():
    assert backward_ok(obj({"a": NUMBER}), obj({"a": INTEGER}))
    assert not backward_ok(obj({"a": INTEGER}), obj({"a": NUMBER}))
    assert backward_ok({"type": ["string", "null"]}, STRING)


def test_json_enum_values_may_be_added_not_removed():
    assert backward_ok({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]})
    assert not backward_ok({"enum": ["a"]}, {"enum": ["a", "b"]})
    assert not backward_ok({"type": "string", "enum": ["a"]}, STRING)


def test_json_bounds_may_relax_not_tighten():
    assert backward_ok({"type": "string", "maxLength": 20}, {"type": "string", "maxLength": 10})
    assert not backward_ok({"type": "string", "maxLength": 5}, {"type": "string", "maxLength": 10})
    assert not backward_ok({"type": "integer", "minimum": 1}, {"type": "integer", "minimum": 0})
    assert not backward_ok({"type": "integer", "minimum": 0}, INTEGER)
    assert backward_ok(INTEGER, {"type": "integer", "minimum": 0})


def test_json_added_pattern_is_incompatible():
    assert not backward_ok({"type": "string", "pattern": "^a"}, STRING)
    assert backward_ok(STRING, {"type": "string", "pattern": "^a"})


def test_json_local_refs_are_followed():
    defs = {"definitions": {"n": INTEGER}}
    old = obj({"a": {"$ref": "#/definitions/n"}}, **defs)
    assert backward_ok(obj({"a": {"$ref": "#/definitions/n"}}, definitions={"n": NUMBER}), old)
    assert not backward_ok(obj({"a": {"$ref": "#/definitions/n"}}, definitions={"n": STRING}), old)


def test_json_alternatives_may_be_added_not_removed():
    assert backward_ok({"oneOf": [STRING, INTEGER]}, STRING)
    assert backward_ok({"anyOf": [STRING, INTEGER, {"type": "null"}]}, {"anyOf": [STRING, INTEGER]})
    assert not backward_ok({"anyOf": [STRING]}, {"anyOf": [STRING, INTEGER]})


def test_json_array_items_are_checked():
    assert backward_ok({"type": "array", "items": NUMBER}, {"type": "array", "items": INTEGER})
    assert not backward_ok({"type": "array", "items": STRING}, {"type": "array", "items": INTEGER})


# --- Levels ---------------------------------------------------------------------------------


def versions(*schemas, fmt="avro"):
    return [RegisteredSchema("s", n, n, fmt, s) for n, s in enumerate(schemas, start=1)]


V1 = record(field("a", "int"))
V2 = record(field("a", "int"), field("b", "string", default=""))
WITHOUT_A = record(field("b", "string", default=""))
A_AS_STRING = record(field("a", "string", default=""), field("b", "string", default=""))


def test_backward_checks_only_the_latest_version_transitive_checks_all():
    history = versions(V1, WITHOUT_A)
    assert check_candidate(A_AS_STRING, "avro", history, "BACKWARD") == []
    assert check_candidate(A_AS_STRING, "avro", history, "BACKWARD_TRANSITIVE") == [
        "BACKWARD: it cannot read version 1: at R.a: writer type int cannot be read as string"
    ]


def test_forward_checks_that_old_readers_read_new_data():
    history = versions(V1)
    assert check_candidate(record(field("a", "long")), "avro", history, "FORWARD") == [
        "FORWARD: version 1 cannot read it: at R.a: writer type long cannot be read as int"
    ]
    assert check_candidate(record(field("a", "long")), "avro", history, "BACKWARD") == []


def test_forward_transitive_checks_every_old_reader():
    strict = record(field("a", "int"), field("b", "string"))
    history = versions(strict, V2)
    dropped_b = record(field("a", "int"))
    assert check_candidate(dropped_b, "avro", history, "FORWARD") == []
    assert len(check_candidate(dropped_b, "avro", history, "FORWARD_TRANSITIVE")) == 1


def test_full_needs_both_directions():
    history = versions(V1)
    added_required = record(field("a", "int"), field("c", "int"))
    assert check_candidate(added_required, "avro", history, "FORWARD") == []
    assert check_candidate(added_required, "avro", history, "FULL") != []
    assert check_candidate(V2, "avro", history, "FULL") == []


def test_full_transitive_and_none():
    history = versions(V1, WITHOUT_A)
    assert check_candidate(A_AS_STRING, "avro", history, "FULL") == []
    assert check_candidate(A_AS_STRING, "avro", history, "FULL_TRANSITIVE") != []
    assert check_candidate({"type": "string"}, "avro", history, "NONE") == []


def test_unknown_level_is_an_error_naming_the_levels():
    with pytest.raises(ValueError, match="expected one of NONE, BACKWARD"):
        check_candidate(V1, "avro", versions(V1), "SIDEWAYS")


def test_the_packaged_subjects_honour_their_levels_and_the_candidate_breaks_them():
    registry = LocalFileRegistry()
    for subject in registry.subjects():
        assert check_subject(registry, subject) == []
    from schemas.registry import PACKAGED_SCHEMAS

    path = PACKAGED_SCHEMAS / "vehicle_telemetry" / "candidates" / "incompatible.avsc"
    candidate = json.loads(path.read_text())
    history = registry.history("vehicle_telemetry")
    problems = check_candidate(candidate, "avro", history, "FULL_TRANSITIVE")
    assert len(problems) == 8  # 2 faults x 2 directions x 2 earlier versions
    assert check_candidate(candidate, "avro", history, "NONE") == []


def test_check_subject_reports_a_bad_history(tmp_path):
    subject = tmp_path / "s"
    subject.mkdir()
    (subject / "1.avsc").write_text(json.dumps(V1))
    (subject / "2.avsc").write_text(json.dumps(record(field("a", "string"))))
    (subject / "config.json").write_text('{"compatibility": "BACKWARD"}')
    problems = check_subject(LocalFileRegistry(tmp_path), "s")
    assert problems == [
        "s v2: BACKWARD: it cannot read version 1: at R.a: writer type int cannot be read as string"
    ]
