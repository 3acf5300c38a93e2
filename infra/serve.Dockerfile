# Serving image: `mlpipe serve`, the native inference server (Open Inference Protocol v2,
# POST /v1/models/<name>/predict, /v2/health/live, /v2/health/ready on port 8000; the same
# protocol over gRPC on port 8001; /metrics on port 8002,
# loopback unless --metrics-addr says otherwise), for running
# the models on your own cluster (infra/k8s/). Not built in CI (no Docker engine there).
#
#   docker build -f infra/serve.Dockerfile -t mlpipe-serve .
#   docker run --rm -p 8000:8000 -p 8001:8001 -e MLPIPE_STORE=s3://BUCKET -e AWS_REGION=eu-west-1 \
#       -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN mlpipe-serve
#
# The server binds 0.0.0.0, so it requires API keys: it refuses to start until the store
# holds one (`mlpipe keys create --name NAME --store s3://BUCKET`), and every endpoint but
# health then needs `Authorization: Bearer <key>`. Revoked keys are refused within 10 s.
#
# The build context is the repository root. The builder's Rust version is the one
# rust-toolchain.toml pins; RUSTUP_TOOLCHAIN makes rustup use the image's toolchain instead
# of fetching the file's extra components (rustfmt, clippy), which a build does not need.
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG RUST_VERSION
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
WORKDIR /src
COPY . .
# The C parts (ring, zstd, lz4, tract's kernels) need only gcc and libc6-dev, which the
# slim image has. TLS is rustls; nothing links OpenSSL.
RUN cargo build --release --locked -p mlpipe --bin mlpipe

FROM debian:bookworm-slim
# ca-certificates: rustls reads the system roots (S3, DynamoDB, STS). `mlpipe serve` stops
# gracefully on SIGTERM (finishing requests in flight); tini runs as PID 1 so signals are
# forwarded and any child processes are reaped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mlpipe \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin mlpipe \
    && install -d -o 10001 -g 10001 /data
COPY --from=build /src/target/release/mlpipe /usr/local/bin/mlpipe
# The default store is ./.mlpipe: /data is where a local store volume can be mounted.
WORKDIR /data
USER 10001:10001
# HTTP (the REST API, /docs) and the Open Inference Protocol over gRPC.
EXPOSE 8000 8001
# Kubernetes probes /v2/health/live and /v2/health/ready (infra/k8s/); the image carries no
# HTTP client for a Docker HEALTHCHECK.
# checkov:skip=CKV_DOCKER_2:Health is checked by the orchestrator's HTTP probes on /v2/health/*; the image has no HTTP client to run a HEALTHCHECK.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/mlpipe"]
CMD ["serve", "--addr", "0.0.0.0:8000", "--grpc-addr", "0.0.0.0:8001"]
