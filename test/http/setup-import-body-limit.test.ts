import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import {
  buildDist,
  getFreePort,
  makeWorkDir,
  startServerProcess,
} from "../helpers/server-process.js";
import { makeDataDir } from "../helpers/test-app.js";

const MB = 1024 * 1024;
const ENDLESS = 100_000_000;

function readBy(pid: number): number {
  return Number(/rchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
}

/** A chunked POST of `size` bytes written as fast as the server reads; resolves with the status. */
function postChunked(url: string, path: string, size: number): Promise<number> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let status: number | undefined;
    let written = 0;
    let received = "";
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
      if (status === undefined && received.length >= 12) {
        status = Number(received.slice(9, 12));
        resolve(status);
        socket.destroy();
      }
    });
    socket.on("error", (e) => status === undefined && reject(e));
    socket.on("close", () => status === undefined && reject(new Error(`closed after ${written}`)));
    socket.write(
      [
        `POST ${path} HTTP/1.1`,
        `host: ${hostname}:${port}`,
        "content-type: application/json",
        "transfer-encoding: chunked",
        "",
        "",
      ].join("\r\n"),
    );
    const piece = Buffer.alloc(64 * 1024, "a");
    const frame = Buffer.concat([
      Buffer.from(`${piece.length.toString(16)}\r\n`),
      piece,
      Buffer.from("\r\n"),
    ]);
    const pump = () => {
      while (status === undefined && !socket.destroyed && written < size) {
        written += piece.length;
        if (!socket.write(frame)) return void socket.once("drain", pump);
      }
      if (written >= size && !socket.destroyed) socket.write("0\r\n\r\n");
    };
    pump();
  });
}

describe("setup mode's import route", () => {
  it("does not buffer a 100 MB chunked POST /probot/import whole (public port, no credentials yet)", async () => {
    buildDist();
    const server = await startServerProcess(
      { PORT: String(await getFreePort()), NO_SMEE_SETUP: "true", TALOS_DATA_DIR: makeDataDir() },
      { cwd: makeWorkDir(), readyPath: "/probot" },
    );
    try {
      const pid = server.child.pid!;
      const read = readBy(pid);
      const status = await postChunked(server.url, "/probot/import", ENDLESS);
      const taken = readBy(pid) - read;
      console.info(`POST /probot/import: ${status}, server read ${(taken / MB).toFixed(1)} MiB`);
      // It had read all 100 MB and answered 500 (Probot parses what it read as JSON).
      expect(taken).toBeLessThan(1 * MB);
      expect(status).toBe(413);
      // An import that says its length, as the setup page's fetch does, still reaches Probot.
      const small = await fetch(new URL("/probot/import", server.url), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ appId: 1 }),
      });
      expect(small.status).toBe(400);
      expect(await small.text()).toMatch(/appId and\/or pem and\/or webhook_secret missing/);
    } finally {
      await server.kill();
    }
  }, 120_000);
});
