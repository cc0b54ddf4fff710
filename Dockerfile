# A custom SDK worker container for Dataflow and Flink: Beam's Python SDK image with
# beam-dataplane and its dependencies preinstalled, so workers start without pip.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/beam-dataplane:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/beam-dataplane:0.1.0
#   python -m beam_pipelines.sentiment --runner=dataflow ... \
#       --sdk_container_image=REGION-docker.pkg.dev/PROJECT/REPO/beam-dataplane:0.1.0
#
# Keep BEAM_VERSION equal to the apache-beam version of the launching environment and
# PYTHON_VERSION equal to its Python (major.minor): the runner checks both.
ARG PYTHON_VERSION=3.11
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}

WORKDIR /opt/beam-dataplane
COPY setup.py README.md ./
COPY beam_pipelines ./beam_pipelines
COPY transforms ./transforms
COPY schemas ./schemas
COPY runners ./runners
RUN pip install --no-cache-dir . && python -c "import beam_pipelines.telemetry, beam_pipelines.sentiment"

# The base image's entrypoint (/opt/apache/beam/boot) starts the SDK harness: keep it.
