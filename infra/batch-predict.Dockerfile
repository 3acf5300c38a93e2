# Batch inference image for CPU batch instances (AWS Batch): the `batch-predict-job` binary,
# which scores inputs too large for the batch-predict function (64 MiB and up, the routing
# table's split). Not built in CI (no Docker engine there); CI builds and tests the same
# binary and the stage code it runs.
#
#   docker build -f infra/batch-predict.Dockerfile -t mlpipe-batch-predict .
#   docker run -e MLPIPE_STORE=s3://bucket \
#       -e MLPIPE_TRIGGER_KEY=batch-input/fraud/requests.parquet mlpipe-batch-predict
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p batch-predict --bin batch-predict-job

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 mlpipe
COPY --from=build /src/target/release/batch-predict-job /usr/local/bin/batch-predict-job
USER mlpipe
# The job writes its input and predictions to a temporary folder: give the job enough
# ephemeral storage (the compute environment's instance volume) for both.
# checkov:skip=CKV_DOCKER_2:A batch job that runs to completion, not a service: AWS Batch tracks it by exit code and there is no endpoint to probe.
ENTRYPOINT ["/usr/local/bin/batch-predict-job"]
