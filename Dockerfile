# syntax=docker/dockerfile:1
# centrifugo-fast container image: a build stage compiles the wheel (Cython twins required),
# the runtime stage gets only the installed venv and runs it as an unprivileged user.
#
#   docker build -t centrifugo-fast .
#   docker run --rm -p 8000:8000 \
#       -e CENTRIFUGO_HTTP_API_KEY=... -e CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY=... \
#       centrifugo-fast
#   # or your own file: -v "$PWD/config.json:/etc/centrifugo-fast/config.json:ro"
#
# The image's default configuration is deploy/config.json (port 8000, /health on).

ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# A C compiler for the Cython extensions (the runtime image has none).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY centrifugo_fast ./centrifugo_fast
# BUILD_EXTENSIONS=yes: a failed compile stops the build instead of shipping the pure twins;
# `version` with REQUIRE_EXTENSIONS=1 proves the installed package loads the compiled ones.
ENV CENTRIFUGO_FAST_BUILD_EXTENSIONS=yes \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/centrifugo-fast \
    && /opt/centrifugo-fast/bin/pip install /wheels/centrifugo_fast-*.whl \
    && CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 /opt/centrifugo-fast/bin/centrifugo-fast version

FROM python:${PYTHON_VERSION}-slim-bookworm
# The venv's interpreter links to the same /usr/local Python of the same base image.
COPY --from=build /opt/centrifugo-fast /opt/centrifugo-fast
COPY deploy/config.json /etc/centrifugo-fast/config.json
# A fixed numeric UID, so orchestrators can verify runAsNonRoot.
RUN groupadd --system --gid 10001 centrifugo-fast \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin centrifugo-fast
USER 10001:10001
ENV PATH=/opt/centrifugo-fast/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 8000
# /health (health.enabled in the default config); adjust the port if you change it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
# SIGTERM (docker stop) closes clients with "reconnect" and exits within shutdown.timeout.
STOPSIGNAL SIGTERM
ENTRYPOINT ["centrifugo-fast"]
CMD ["--config", "/etc/centrifugo-fast/config.json"]
