# Training image for GPU batch instances (AWS Batch): the `train-job` binary built with
# candle's CUDA kernels. Not built in CI (no Docker engine there); CI builds and tests the
# same binary without `cuda`.
#
#   docker build -f infra/train.Dockerfile -t mlpipe-train .
#   docker run --gpus all -e MLPIPE_STORE=s3://bucket \
#       -e MLPIPE_TRIGGER_KEY=features/card_activity/v=<version>/_manifest.json mlpipe-train
#
# CUDA_COMPUTE_CAP selects the GPU generation candle's kernels are compiled for
# (80 = A100, 86 = A10G, 89 = L4, 90 = H100); there is no GPU at build time to ask.
ARG CUDA_VERSION=12.4.1

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu22.04 AS build
ARG CUDA_COMPUTE_CAP=86
ENV CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP} \
    PATH=/root/.cargo/bin:${PATH}
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates build-essential pkg-config \
    && rm -rf /var/lib/apt/lists/* \
    && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p train --bin train-job --features cuda

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu22.04
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 mlpipe
COPY --from=build /src/target/release/train-job /usr/local/bin/train-job
USER mlpipe
# checkov:skip=CKV_DOCKER_2:A batch job that runs to completion, not a service: AWS Batch tracks it by exit code and there is no endpoint to probe.
ENTRYPOINT ["/usr/local/bin/train-job"]
