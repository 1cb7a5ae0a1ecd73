# Offline stand-in for an S3 service (MinIO's image cannot be pulled here): s3rver, the embedded
# S3 endpoint of the demo and the tests, with its bucket created at start. Tests only: s3rver
# accepts any credentials (--allow-mismatched-signatures) and keeps objects on local disk. Production runs MinIO or any real S3.
# Node's --openssl-legacy-provider: s3rver's continuation tokens use DES, which OpenSSL 3 keeps in
# its legacy provider; without it a listing of more than 1,000 keys answers 500 (as in tools/services).
#   podman run --network host celfarm-standin-s3 --port 9000 --configure-bucket celfarm
ARG BASE=localhost/celfarm-standin-node:20-bookworm
FROM ${BASE}
WORKDIR /opt/s3rver
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi; \
    npm install --no-audit --no-fund --loglevel=error s3rver@3.7.1 \
 && mkdir -p /data && chown node:node /data
USER node
EXPOSE 9000
ENTRYPOINT ["node", "--openssl-legacy-provider", "/opt/s3rver/node_modules/s3rver/bin/s3rver.js", "--directory", "/data", "--address", "0.0.0.0", "--allow-mismatched-signatures", "--no-vhost-buckets"]
CMD ["--port", "9000", "--configure-bucket", "celfarm"]
