# accolade: build with the locked dependencies, run as a non-root user in a small image.
#   docker build -t accolade .
#   docker run --rm -v $PWD/accolade.toml:/etc/accolade/accolade.toml:ro \
#     -e ACCOLADE_DATABASE_URL=postgres://... accolade run

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so editing the code does not rebuild Polars.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
COPY sql sql
COPY config config
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/accolade

FROM debian:bookworm-slim
# CA certificates for TLS to managed databases; tzdata is not needed (zones are compiled in).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin accolade
COPY --from=build /src/target/release/accolade /usr/local/bin/accolade
USER 10001:10001
ENV ACCOLADE_CONFIG=/etc/accolade/accolade.toml \
    ACCOLADE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/accolade"]
CMD ["run"]
