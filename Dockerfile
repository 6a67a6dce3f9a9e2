# syntax=docker/dockerfile:1
# hume-bridge service image: `docker build -t hume-bridge:0.1.0 .`
#
# Two stages on the same pinned base. The build stage installs the project and its runtime dependencies
# (pyproject.toml; not the `embedded` or `dev` extras) into a virtual environment; the final stage copies
# only that environment, so no build tooling, source tree or pip cache reaches it. Every dependency ships
# as a manylinux wheel, and neither stage has a compiler.
#
# Runs as an unprivileged user (10001, as deploy/k8s expects) and writes nothing outside /tmp, so it works
# with a read-only root file system (Kubernetes: readOnlyRootFilesystem plus an emptyDir on /tmp).

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/hume-bridge

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
# pip compiles the bytecode at install time, so nothing is written at run time. pip and setuptools are
# then removed from the environment: the service never installs anything.
RUN /opt/hume-bridge/bin/pip install --no-cache-dir . \
    && /opt/hume-bridge/bin/pip uninstall --yes pip setuptools


FROM python:3.11.14-slim-bookworm

LABEL org.opencontainers.image.title="hume-bridge" \
      org.opencontainers.image.description="Kafka -> Hume expression measurement streaming API -> Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --gid 10001 bridge \
    && useradd --uid 10001 --gid bridge --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin bridge

COPY --from=build /opt/hume-bridge /opt/hume-bridge

ENV PATH=/opt/hume-bridge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRIDGE_HTTP_PORT=9400

USER 10001:10001
WORKDIR /tmp
EXPOSE 9400

# /healthz answers while the process and its event loop are alive. The image has no curl: the
# interpreter does the request, and any error or non-2xx answer exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIDGE_HTTP_PORT', '9400'), timeout=4)"]

ENTRYPOINT ["hume-bridge", "run"]
