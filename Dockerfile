# Sluice in a container: build with the lockfile, run the compiled output as a non-root user.
# The config is a mounted file; the HTTP port answers the health check.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/sluice
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY scripts ./scripts
COPY conf/sluice.example.toml /etc/sluice/sluice.toml
# The official image's unprivileged user; work_dir (the node status file) must be writable by it.
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
# 9999 clients, 9898 PCP, 9899 HTTP (/metrics, /health, /primary, /replica, /nodes).
EXPOSE 9999 9898 9899
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9899/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["-f", "/etc/sluice/sluice.toml"]
