# syntax=docker/dockerfile:1.7
# celfarm CUDA worker: one worker process per GPU, onnxruntime-node with its CUDA 12 execution
# provider on NVIDIA's CUDA 12 + cuDNN 9 runtime. Build from the repository root (network at
# build time: npm, and NuGet for the CUDA provider, which onnxruntime-node's installer fetches):
#
#   docker build -f docker/worker-cuda.Dockerfile -t celfarm/worker-cuda:0.1.0 .
#   docker run --gpus 1 -e WORKER_PROVIDERS=cuda:0,cpu --env-file … celfarm/worker-cuda:0.1.0
#
# The host needs an NVIDIA driver for CUDA 12 and the NVIDIA Container Toolkit. The worker reports
# the provider its sessions opened with (`cuda` or, with no usable GPU, `cpu`) in /v1/workers.
# BUILD_BASE: Debian bookworm with Node 20 (as docker/Dockerfile's BASE); CUDA_BASE: the runtime.
ARG BUILD_BASE=docker.io/library/node:20-bookworm-slim
ARG CUDA_BASE=docker.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04

FROM ${BUILD_BASE} AS base

# ---- build: npm ci (dev dependencies included), dashboard + bundles + production node_modules
FROM base AS build
WORKDIR /src
ENV CI=true
# The manifests first, so `npm ci` stays cached until a dependency changes. Every npm workspace
# is listed (npm ci refuses a lockfile whose workspaces are missing).
COPY package.json package-lock.json .npmrc ./
COPY apps/api/package.json apps/api/
COPY apps/cli/package.json apps/cli/
COPY apps/dashboard/package.json apps/dashboard/
COPY apps/worker/package.json apps/worker/
COPY libs/config/package.json libs/config/
COPY libs/contract/package.json libs/contract/
COPY libs/jobs/package.json libs/jobs/
COPY libs/metrics/package.json libs/metrics/
COPY libs/pipeline/package.json libs/pipeline/
COPY libs/qa/package.json libs/qa/
COPY libs/storage/package.json libs/storage/
COPY libs/tenancy/package.json libs/tenancy/
COPY libs/webhooks/package.json libs/webhooks/
COPY tools/convert/package.json tools/convert/
COPY tools/model-kit/package.json tools/model-kit/
COPY tools/services/package.json tools/services/
# .npmrc skips onnxruntime-node's CUDA download (the CPU provider ships in the package).
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in a layer):
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt ...
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm ci --no-audit --no-fund --loglevel=error
COPY . .
# The CUDA execution provider: libonnxruntime_providers_{cuda,shared,tensorrt}.so beside the CPU
# runtime in onnxruntime-node's bin folder (the README's "GPU workers"). ORT_NODE_INSTALL=skip
# leaves it out (a CPU-only build of this image, for checks without network access to NuGet).
ARG ORT_NODE_INSTALL=cuda12
RUN --mount=type=secret,id=ca,required=false \
    if [ "$ORT_NODE_INSTALL" != skip ]; then \
      if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
      ONNXRUNTIME_NODE_INSTALL="$ORT_NODE_INSTALL" node node_modules/onnxruntime-node/script/install.js \
      && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so; \
    fi
RUN node scripts/build.mjs --out /out --only worker

# ---- worker-cuda
FROM ${CUDA_BASE} AS worker-cuda
# Node 20 from the build base (same glibc-linked binary the official image ships).
COPY --from=base /usr/local/bin/node /usr/local/bin/node
RUN (id -u node >/dev/null 2>&1 || (groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node)) \
 && mkdir -p /var/cache/celfarm/packs && chown node:node /var/cache/celfarm/packs
ENV NODE_ENV=production \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    WORKER_PROVIDERS=cuda:0,cpu \
    WORKER_METRICS_PORT=9464 \
    WORKER_METRICS_HOST=0.0.0.0 \
    PACK_CACHE_DIR=/var/cache/celfarm/packs
WORKDIR /app
COPY --from=build /out/worker/ /app/
# The pack cache: a volume, so the GBs of a real pack survive restarts and are shared by the
# workers of a host.
VOLUME /var/cache/celfarm/packs
USER node
EXPOSE 9464
# SIGTERM drains (see docker/Dockerfile): give it a grace period longer than one frame.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.WORKER_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "apps/worker/dist/server/main.mjs"]
