# syntax=docker/dockerfile:1
# The shipper agent image.
#
#   docker build -t shipper:0.1.0 .
#
# Two stages. The builder turns shipper and its runtime dependencies into wheels (binary
# wheels only for the dependencies; shipper's own per-line extension, shipper/_speedups.pyx,
# is compiled there with gcc, and SHIPPER_REQUIRE_COMPILED=1 makes a failed compile fail the
# build); the final stage installs just those wheels from a bind mount, so neither the
# wheels nor any build tool or compiler end up in it, and removes pip/setuptools/wheel
# afterwards. Both steps are scripts in docker/ that the test suite runs
# in a clean virtualenv (tests/k8s/test_image.py), so what is tested is what is built.
#
# User: the image defaults to an unprivileged user (UID 10001), which is all that
# `shipper check`, `shipper dashboards import` or a forward aggregator need. The node agent
# DaemonSet overrides it with runAsUser: 0, because container log files on the node are
# root:root 0640; it drops every capability instead (see k8s/base/daemonset.yaml).
# In production, pin both FROM lines by digest (python:3.11-slim-bookworm@sha256:...).

FROM python:3.11-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SHIPPER_REQUIRE_COMPILED=1
# The C compiler of the builder only (the Python headers come with the image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY shipper ./shipper
COPY outputs ./outputs
COPY docker ./docker
RUN sh docker/build-wheels.sh /src /wheels

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="shipper" \
      org.opencontainers.image.description="Kubernetes log shipper: tails container logs, adds Kubernetes metadata, delivers to Elasticsearch or Logz.io exactly once" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# pip compiles the installed modules at install time, so nothing is written at run time
# (the DaemonSet's root filesystem is read-only).
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,from=builder,source=/src/docker,target=/docker \
    sh /docker/install-wheels.sh /wheels \
 && groupadd --system --gid 10001 shipper \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin shipper
USER 10001:10001
WORKDIR /
EXPOSE 24224/tcp 24224/udp 24231/tcp
# /healthz of the telemetry endpoint (telemetry.listen, 127.0.0.1:24231 by default).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('SHIPPER_HEALTHZ_URL', 'http://127.0.0.1:24231/healthz'), timeout=4)"]
ENTRYPOINT ["shipper"]
CMD ["run", "-c", "/etc/shipper/shipper.yaml"]
