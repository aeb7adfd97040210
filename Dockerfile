# mtun's image: the CA and the node agent. Two stages: `build` compiles the TypeScript and the
# SO_ORIGINAL_DST addon with a full toolchain, then drops dev dependencies; `runtime` is
# Debian slim with Node 20 and iptables (the agent runs iptables-restore; distroless has no
# iptables) and nothing else. tests/deploy/dockerfile.test.ts runs the build stage's
# commands in a temporary directory, since CI has no container engine.

FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY binding.gyp ./
COPY native/ native/
RUN npm run build:native && test -f build/Release/mtun_native.node
COPY tsconfig.json tsconfig.build.json ./
COPY agent/ agent/
COPY ca/ ca/
COPY cli/ cli/
COPY hbone/ hbone/
COPY identity/ identity/
COPY lib/ lib/
COPY mesh/ mesh/
COPY policy/ policy/
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json /app/binding.gyp ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY --from=build /app/build/Release/mtun_native.node build/Release/mtun_native.node
COPY deploy/docker/agent-entrypoint.sh /usr/local/bin/mtun-agent-entrypoint
COPY deploy/iptables/mtun-redirect.sh /usr/local/bin/mtun-redirect
ENV NODE_ENV=production
# The CA runs as this user; the agent's DaemonSet runs as root for iptables.
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
