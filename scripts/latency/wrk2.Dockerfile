# wrk2 has no official image. Build one and make it available to your cluster:
#   docker build -t gwlib/wrk2:local -f scripts/latency/wrk2.Dockerfile scripts/latency
#   kind load docker-image gwlib/wrk2:local        # or: k3d image import gwlib/wrk2:local
# (not built in gwlib's CI: no container runtime there)
FROM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git ca-certificates \
        libssl-dev zlib1g-dev && rm -rf /var/lib/apt/lists/*
RUN git clone https://github.com/giltene/wrk2 /src && cd /src && git checkout 44a94c1 && make

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
        && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/wrk /usr/local/bin/wrk
ENTRYPOINT ["wrk"]
