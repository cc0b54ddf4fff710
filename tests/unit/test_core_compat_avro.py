"""avro_problems against fastavro's own schema resolution (the oracle).

Writer schemas are generated, reader schemas are random evolutions of them; when
``avro_problems`` finds nothing, fastavro must read every generated datum of the
writer with the reader schema. When fastavro cannot read a datum,
``avro_problems`` must have named a problem.
"""

import io
import itertools

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.compat_avro import avro_problems

PRIMITIVES = ["int", "long", "float", "double", "string", "bytes", "boolean", "null"]
SYMBOLS = ["A", "B", "C", "D"]
_names = itertools.count()


def _name(prefix):
    return f"{prefix}{next(_names)}"


@st.composite
def _writer(draw, depth=0):
    kinds = (
        ["primitive"]
        if depth >= 2
        else ["primitive"] * 3
        + [
            "record",
            "enum",
            "array",
            "map",
            "fixed",
            "union",
        ]
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "primitive":
        return draw(st.sampled_from(PRIMITIVES))
    if kind == "record":
        count = draw(st.integers(1, 3))
        fields = [{"name": f"f{i}", "type": draw(_writer(depth + 1))} for i in range(count)]
        return {"type": "record", "name": _name("R"), "fields": fields}
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
        return {"type": "enum", "name": _name("E"), "symbols": symbols}
    if kind == "array":
        return {"type": "array", "items": draw(_writer(depth + 1))}
    if kind == "map":
        return {"type": "map", "values": draw(_writer(depth + 1))}
    if kind == "fixed":
        return {"type": "fixed", "name": _name("F"), "size": draw(st.integers(1, 3))}
    return draw(st.lists(st.sampled_from(PRIMITIVES), min_size=1, max_size=3, unique=True))


@st.composite
def _reader(draw, writer):
    """A random evolution of ``writer``: same, promoted, changed, extended or cut."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(PRIMITIVES))  # an unrelated change
    if isinstance(writer, str):
        if draw(st.booleans()):
            return writer
        wrapped = draw(st.sampled_from(PRIMITIVES))
        return [wrapped, writer] if wrapped != writer and draw(st.booleans()) else wrapped
    if isinstance(writer, list):
        branches = draw(st.lists(st.sampled_from(PRIMITIVES), min_size=1, max_size=4, unique=True))
        return branches if draw(st.booleans()) else draw(st.sampled_from(PRIMITIVES))
    kind = writer["type"]
    if kind == "record":
        fields = []
        for field in writer["fields"]:
            action = draw(st.sampled_from(["keep", "evolve", "drop", "rename"]))
            if action == "drop":
                continue
            evolved = {**field}
            if action == "evolve":
                evolved["type"] = draw(_reader(field["type"]))
            if action == "rename":
                evolved = {**evolved, "name": f"{field['name']}_new", "aliases": [field["name"]]}
            fields.append(evolved)
        for extra in range(draw(st.integers(0, 2))):
            added = {"name": f"added{extra}", "type": draw(st.sampled_from(["int", "null"]))}
            if draw(st.booleans()):
                added["default"] = 0 if added["type"] == "int" else None
            fields.append(added)
        return {**writer, "fields": fields}
    if kind == "enum":
        symbols = draw(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=4, unique=True))
        reader = {**writer, "symbols": symbols}
        if draw(st.booleans()):
            reader["default"] = symbols[0]
        return reader
    if kind == "array":
        return {**writer, "items": draw(_reader(writer["items"]))}
    if kind == "map":
        return {**writer, "values": draw(_reader(writer["values"]))}
    return {**writer, "size": draw(st.sampled_from([writer["size"], writer["size"] + 1]))}


@st.composite
def _datum(draw, schema):
    if isinstance(schema, list):
        return draw(_datum(draw(st.sampled_from(schema))))
    if isinstance(schema, str):
        return draw(
            {
                "int": st.integers(-(2**31), 2**31 - 1),
                "long": st.integers(-(2**63), 2**63 - 1),
                "float": st.floats(width=32, allow_nan=False),
                "double": st.floats(allow_nan=False),
                "string": st.text(max_size=5),
                # UTF-8 bytes: the spec lets a string reader read bytes that are text.
                "bytes": st.text(max_size=5).map(str.encode),
                "boolean": st.booleans(),
                "null": st.none(),
            }[schema]
        )
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: draw(_datum(f["type"])) for f in schema["fields"]}
    if kind == "enum":
        return draw(st.sampled_from(schema["symbols"]))
    if kind == "array":
        return draw(st.lists(_datum(schema["items"]), max_size=3))
    if kind == "map":
        return draw(st.dictionaries(st.text(max_size=3), _datum(schema["values"]), max_size=3))
    return draw(st.binary(min_size=schema["size"], max_size=schema["size"]))


@st.composite
def _cases(draw):
    writer = draw(_writer())
    reader = draw(_reader(writer))
    data = draw(st.lists(_datum(writer), min_size=1, max_size=4))
    return writer, reader, data


def _readable(writer, reader, datum) -> bool:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(writer, named_schemas={}), datum)
    buffer.seek(0)
    try:
        fastavro.schemaless_reader(
            buffer,
            fastavro.parse_schema(writer, named_schemas={}),
            fastavro.parse_schema(reader, named_schemas={}),
        )
    except (SchemaResolutionError, ValueError, KeyError, TypeError):
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_avro_problems_agrees_with_fastavro_resolution(case):
    writer, reader, data = case
    problems = avro_problems(reader, writer)
    readable = [_readable(writer, reader, datum) for datum in data]
    if not problems:
        # Sound: a reader found compatible reads every datum of the writer.
        assert all(readable), (reader, writer)
    if not all(readable):
        # And fastavro refusing a datum means there is a problem to report.
        assert problems, (reader, writer)
    assert all(p.startswith("at ") for p in problems)


T_INT = {"type": "record", "name": "T", "fields": [{"name": "x", "type": "int"}]}
T_STRING = {"type": "record", "name": "T", "fields": [{"name": "x", "type": "string"}]}


def _record(name, **fields):
    return {
        "type": "record",
        "name": name,
        "fields": [{"name": k, "type": v} for k, v in fields.items()],
    }


@pytest.mark.parametrize(
    ("reader", "writer", "problems"),
    [
        ("string", "int", ["at top level: writer type int cannot be read as string"]),
        (
            ["null", "int"],
            "string",
            ["at top level: the reader union has no branch for writer type string"],
        ),
        ("int", ["int", "string"], ["at top level: writer type string cannot be read as int"]),
        (
            _record("R", a={"type": "array", "items": "int"}),
            _record("R", a={"type": "array", "items": "string"}),
            ["at R.a[]: writer type string cannot be read as int"],
        ),
        (
            _record("R", m={"type": "map", "values": "int"}),
            _record("R", m={"type": "map", "values": "string"}),
            ["at R.m{}: writer type string cannot be read as int"],
        ),
        (
            _record("R", u=["null", "int"]),
            _record("R", u=["null", "string"]),
            ["at R.u: the reader union has no branch for writer type string"],
        ),
        (
            _record("R", u=["null", "int"]),
            _record("R", u=["null", "long"]),
            ["at R.u: the reader union has no branch for writer type long"],
        ),
        # A named type used twice is checked at both places.
        (
            _record("R", a=T_STRING, b="T"),
            _record("R", a=T_INT, b="T"),
            [
                "at R.a.x: writer type int cannot be read as string",
                "at R.b.x: writer type int cannot be read as string",
            ],
        ),
        (
            _record("A"),
            _record("B"),
            ["at top level: writer record 'B' does not match reader name 'A' or its aliases"],
        ),
        (
            {"type": "fixed", "name": "F", "size": 2},
            {"type": "fixed", "name": "F", "size": 3},
            ["at top level: fixed size 3 cannot be read as size 2"],
        ),
        (
            {"type": "enum", "name": "E", "symbols": ["A"]},
            {"type": "enum", "name": "E", "symbols": ["A", "B"]},
            ["at top level: the reader enum lacks writer symbols ['B'] and has no default"],
        ),
        (
            {"type": "array", "items": "int"},
            {"type": "array", "items": "string"},
            ["at []: writer type string cannot be read as int"],
        ),
        # Inside a recursive type, the same record on one side meets another on the other.
        (
            _record("Node", next=["null", _record("Other", v="string") | {"aliases": ["Node"]}]),
            _record("Node", next=["null", "Node"], v="int"),
            ["at Node.next: the reader union has no branch for writer type record"],
        ),
        (
            _record("Node", next=["null", "Node"], v="int") | {"aliases": ["Inner"]},
            _record("Node", next=["null", _record("Inner", v="string", next="null")], v="int"),
            ["at Node.next: the reader union has no branch for writer type record"],
        ),
        # Names match without their namespaces; records and errors read each other.
        (_record("a.b.R"), _record("R"), []),
        (_record("R"), _record("x.y.R"), []),
        ({"type": "error", "name": "E", "fields": []}, _record("E"), []),
        (_record("E"), {"type": "error", "name": "E", "fields": []}, []),
    ],
)
def test_avro_problems_name_the_place_and_the_types(reader, writer, problems):
    assert avro_problems(reader, writer) == problems
