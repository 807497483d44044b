# One image with both binaries (`manage` and the `risky_migrations` server) and
# every project directory. Each project's docker-compose.yml builds it and
# picks its project with PROJECT. Not run on the machines this was written on
# (no Docker engine there): see README.
FROM rust:1-bookworm AS build
# libclang: the pg_query crate builds PostgreSQL's parser with bindgen
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev libclang1-14 libclang-common-14-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin manage --bin risky_migrations

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/manage /src/target/release/risky_migrations /usr/local/bin/
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /app
# the project directories: .env, diesel.toml and migrations/ (the SQL is also
# embedded in the binaries; these let `diesel` and `manage` resolve projects)
COPY . /app
ENTRYPOINT ["docker-entrypoint.sh"]
