"""DataflowRunner --dry_run builds the sentiment job offline, with our transforms in its proto."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines import sentiment
from beam_pipelines.launch.presets import resolve_runner
from tests.helpers import dataflow_dry_run_flags

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETUP_PY = Path(__file__).resolve().parents[2] / "setup.py"


def test_dry_run_builds_the_job_with_our_transforms(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # no metadata-server probe for credentials
    source = tmp_path / "tweets.jsonl"
    source.write_text('{"id": "1"}\n')
    options = PipelineOptions(
        [
            f"--source=file://{source}",
            "--bounded",
            *dataflow_dry_run_flags(SETUP_PY),
        ]
    )
    pipeline = beam.Pipeline(runner=resolve_runner(options, bounded=True), options=options)
    sentiment.build(pipeline, options)
    result = pipeline.run()

    assert result.job.proto.type_.name == "JOB_TYPE_BATCH"
    transforms = pipeline.runner.proto_pipeline.components.transforms.values()
    top_level = {t.unique_name for t in transforms if "/" not in t.unique_name}
    assert {"Read", "Decode", "Clean", "Score", "WriteScored", "WriteDeadLetters"} <= top_level
    nested = {t.unique_name for t in transforms}
    assert "WriteScored/Commit" in nested and "Decode/Decode" in nested
