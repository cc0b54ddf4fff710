"""The ``dataplane`` pytest plugin as a user's suite sees it (run in a nested pytest)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]


def test_it_is_registered_under_its_entry_point() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "dataplane"]
    assert plugin.value == "runners.pytest_plugin"


def test_schema_registry_reads_the_directory_the_ini_option_names(
    pytester: pytest.Pytester,
) -> None:
    subject = pytester.mkdir("schemas") / "reading"
    subject.mkdir()
    schema = {"type": "record", "name": "Reading", "fields": [{"name": "v", "type": "long"}]}
    (subject / "1.avsc").write_text(json.dumps(schema))
    pytester.makeini("[pytest]\ndataplane_schemas = schemas\n")
    pytester.makepyfile(
        """
        def test_subjects(schema_registry):
            assert schema_registry.subjects() == ["reading"]
            assert schema_registry.latest("reading").format == "avro"
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_a_missing_service_skips_and_is_named_at_the_end(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAPLANE_REQUIRE_SERVICES", raising=False)
    monkeypatch.setenv("KINESALITE_BIN", "/nonexistent/kinesalite")
    pytester.makepyfile("def test_kinesis(kinesalite_endpoint):\n    assert False\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*services missing*", "kinesalite: 1 test skipped.*npm*"])


def test_with_services_required_a_missing_service_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAPLANE_REQUIRE_SERVICES", "1")
    monkeypatch.setenv("KINESALITE_BIN", "/nonexistent/kinesalite")
    pytester.makepyfile(
        """
        import pytest

        def test_kinesis(kinesalite_endpoint):
            pass

        def test_any_other_skip():
            pytest.skip("not today")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*needs kinesalite*DATAPLANE_REQUIRE_SERVICES=1 requires it*"])
