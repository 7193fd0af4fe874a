# The Talos image for compose.yaml: `npm ci` builds dist/ (the prepare script), then the
# development dependencies are dropped. The data directory is a volume.
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
RUN npm ci && npm prune --omit=dev && mkdir /data && chown node:node /data
# HOST: Probot listens on localhost unless told otherwise, where no other container reaches it.
ENV NODE_ENV=production TALOS_DATA_DIR=/data PORT=3000 HOST=0.0.0.0
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
USER node
CMD ["node", "dist/main.js"]
