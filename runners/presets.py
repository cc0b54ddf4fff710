"""Runner presets: turn ``--runner=direct`` into the right local runner."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

__all__ = ["DIRECT_NAMES", "resolve_runner"]

# Names that mean "run it here". Beam's DirectRunner first tries to download the
# Prism binary (fails offline, then falls back); these pick a local runner directly.
DIRECT_NAMES = ("direct", "directrunner")


def resolve_runner(options: PipelineOptions, *, bounded: bool) -> PipelineRunner | str:
    """The runner to pass to ``beam.Pipeline`` for these options.

    ``direct`` (or no runner, or ``DirectRunner``) becomes the FnApiRunner for a
    bounded run and the BundleBasedDirectRunner for a streaming one; any other
    runner name is handed to Beam unchanged.

    >>> from apache_beam.options.pipeline_options import PipelineOptions
    >>> type(resolve_runner(PipelineOptions(["--runner=direct"]), bounded=True)).__name__
    'FnApiRunner'
    >>> resolve_runner(PipelineOptions(["--runner=DataflowRunner"]), bounded=True)
    'DataflowRunner'
    """
    name = options.view_as(StandardOptions).runner
    if name is not None and name.lower() not in DIRECT_NAMES:
        return name
    if bounded:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    options.view_as(StandardOptions).streaming = True
    return "PrismRunner"
