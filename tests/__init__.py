"""The test suite: unit/ (no services), integration/ (a local broker, emulators), faults/
(the kill -9 fault harness behind make chaos), and helpers; tests/README.md maps the
README's guarantees to the tests that would fail if they broke."""
