# Courier on the official Bun image, pinned to the version in package.json.
# The build context is an allowlist (.dockerignore): only what the server reads at runtime.
# BASE_IMAGE exists for builds without registry access (tests/ops-container.test.ts); keep the default.
ARG BASE_IMAGE=oven/bun:1.4.4-slim
FROM ${BASE_IMAGE} AS base
WORKDIR /app

# Only the manifests, so the dependency layer below is rebuilt when they change and not on every
# source edit. Copying the whole context and deleting the rest keeps workspace manifests
# (packages/*/package.json, if the repo has any) without naming them here.
FROM base AS manifests
COPY . /manifests
RUN find /manifests -type f ! -name package.json ! -name bun.lock ! -name bunfig.toml -exec rm -f {} +

FROM base
COPY --from=manifests /manifests ./
RUN bun install --frozen-lockfile --production
COPY . .

# One data dir, the one config/production.json names and compose.yaml mounts its volume on. It is
# created and owned by the user the server runs as: a volume mounted here starts with this
# ownership, so the embedded store can write.
ENV COURIER_ENV=production \
    COURIER_DATA_DIR=/var/lib/courier \
    PORT=8080
RUN mkdir -p /var/lib/courier && chown bun:bun /var/lib/courier
VOLUME /var/lib/courier
USER bun
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Last, so a new revision rebuilds only these layers, not the dependency install.
ARG BASE_IMAGE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="courier" \
      org.opencontainers.image.description="Real-time event delivery over WebSocket on Bun" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# bun directly, not `bun run start`: one process, so SIGTERM reaches the server and it drains.
CMD ["bun", "src/main.ts"]
