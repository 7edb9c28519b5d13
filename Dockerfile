# One image for the operator and the workspace router (the chart sets MODELCATALOG_IMAGE_ROUTER to it).
#   default command: the router (`python -m modelcatalog.router`), which the routers the operator
#   renders run without a command; the chart's operator Deployment runs `python -m modelcatalog operator run`.
# Build: docker build -t ghcr.io/modelcatalog/modelcatalog:0.1.0 .
# The base is an exact tag; pin it by digest in your registry mirror (FROM ...@sha256:...).

ARG PYTHON_IMAGE=docker.io/library/python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modelcatalog
WORKDIR /src
# Dependencies first (cached while only the code changes): the pinned versions of pyproject.toml.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/modelcatalog/bin/pip install --no-compile . \
 && /opt/modelcatalog/bin/pip uninstall --yes pip setuptools \
 && /opt/modelcatalog/bin/python -m compileall -q /opt/modelcatalog/lib

FROM ${PYTHON_IMAGE}
# No compilers, no pip in the venv: only the interpreter of the base and the installed package.
COPY --from=build /opt/modelcatalog /opt/modelcatalog
ENV PATH=/opt/modelcatalog/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Numeric, so runAsNonRoot can check it; 65532 as the model-server pods (docs/settings.md).
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
CMD ["python", "-m", "modelcatalog.router"]
