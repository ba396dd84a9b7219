# Courier on the official Bun image, pinned to the version in package.json.
FROM oven/bun:1.4.4-slim
WORKDIR /app
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile --production
COPY src ./src
COPY config ./config
ENV COURIER_ENV=production \
    COURIER_DATA_DIR=/var/lib/courier \
    PORT=8080
RUN mkdir -p /var/lib/courier && chown bun:bun /var/lib/courier
USER bun
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["bun", "run", "start"]
