# syntax=docker/dockerfile:1
# One image for every conveyor component: `conveyor run <component>`,
# `conveyor connect <channel>`, `conveyor sink <target>`, ... (see
# docker-compose.yml and deploy/k8s). Build: `docker build -t conveyor .`

# --- build: the release binary (librdkafka bundled, system OpenSSL) ---
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin conveyor \
 && cp target/release/conveyor /usr/local/bin/conveyor

# --- runtime: Debian slim, OpenSSL, CA certificates, an unprivileged user ---
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/conveyor --create-home conveyor
COPY --from=build /usr/local/bin/conveyor /usr/local/bin/conveyor
# The default config (every field; endpoints and secrets come from the
# environment: CONVEYOR_<SECTION>__<KEY>, or <KEY>_FILE for mounted secrets)
# and the demo's catalog.
COPY conveyor.example.toml /etc/conveyor/conveyor.toml
COPY examples /usr/share/conveyor/examples
ENV CONVEYOR_CONFIG=/etc/conveyor/conveyor.toml \
    CONVEYOR_LOG_FORMAT=json \
    CONVEYOR_HTTP__OBSERVABILITY_BIND=0.0.0.0:9464 \
    CONVEYOR_STATE__DIR=/var/lib/conveyor/state \
    CONVEYOR_STORE__PATH=/var/lib/conveyor/store/operational.redb \
    CONVEYOR_LABEL__DOCUMENTS=/var/lib/conveyor/documents
USER conveyor
WORKDIR /var/lib/conveyor
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD curl -fsS http://127.0.0.1:9464/healthz >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/conveyor"]
CMD ["--help"]
