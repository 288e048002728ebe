# Sluice in a container: build with TypeScript, run the compiled proxy.
# docker build -t sluice . && docker run -p 9999:9999 -v $PWD/sluice.toml:/etc/sluice.toml sluice
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY conf ./conf
USER node
EXPOSE 9999 9898 9899
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["-f", "/etc/sluice.toml"]
