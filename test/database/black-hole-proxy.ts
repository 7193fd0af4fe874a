import { createConnection, createServer, type Socket } from "node:net";
import { TEST_DATABASE_URL } from "../helpers/shared-services.js";

/**
 * A TCP proxy to the test PostgreSQL that can become a black hole, as a partition or a NAT that
 * forgot the connections does: from then on nothing passes either way, not even the end of a
 * connection, and no connection is closed or refused. `goLight` ends the partition: bytes pass
 * again (those sent meanwhile are lost).
 */
export async function startBlackHoleProxy() {
  const target = new URL(TEST_DATABASE_URL);
  const sockets = new Set<Socket>();
  let dark = false;
  // Half-open allowed: a client's goodbye (its FIN) gets no FIN back while dark.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({
      host: target.hostname,
      port: Number(target.port || 5432),
      allowHalfOpen: true,
    });
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on("data", (data) => void (dark || to.write(data)));
      from.on("end", () => void (dark || to.end()));
      from.on("close", () => {
        sockets.delete(from);
        if (!dark) to.destroy();
      });
      from.on("error", () => undefined);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const url = new URL(TEST_DATABASE_URL);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    port,
    goDark: () => void (dark = true),
    goLight: () => void (dark = false),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** This process's sockets still open to `port` (the proxy's own are connected from it). */
export function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter(
    (handle) => handle instanceof Object && (handle as Partial<Socket>).remotePort === port,
  ).length;
}
