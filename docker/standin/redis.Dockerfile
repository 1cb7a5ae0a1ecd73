# Offline stand-in for the public `redis:7-bookworm` image (tests on machines without a registry):
# Debian's redis-server on the stand-in base. Same entry point contract as the public image:
# `redis-server [args]` as the command, data in /data.
ARG BASE=localhost/celfarm-standin-node:20-bookworm
FROM ${BASE}
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no"]
