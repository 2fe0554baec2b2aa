# syntax=docker/dockerfile:1
# Multi-stage build of the single `callaudit` binary (api | worker | migrate | ...).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config ca-certificates && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked -p callaudit && strip target/release/callaudit

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin callaudit
COPY --from=build /src/target/release/callaudit /usr/local/bin/callaudit
USER 10001:10001
ENV API_ADDR=0.0.0.0:8080 LOG_FORMAT=json RUST_LOG=info
EXPOSE 8080
# `api` and `worker` apply pending migrations (advisory-locked) and seed RBAC at start.
ENTRYPOINT ["/usr/local/bin/callaudit"]
CMD ["api"]
