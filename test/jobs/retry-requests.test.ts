import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import {
  answersRetryRequests,
  requestRetries,
  retryRequestsDirectory,
  serveRetryRequests,
  type RetryRequestServer,
} from "../../src/jobs/retry-requests.js";
import { eventually } from "../helpers/eventually.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

const us = { pid: process.pid, host: hostname() };

describe("retry requests: `talos jobs retry` beside a running server", () => {
  const servers: RetryRequestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function serve(directory: string, retryParked: (id: string) => Promise<boolean>) {
    const logs = await captureLogs("info");
    const server = await serveRetryRequests({
      directory,
      retryParked,
      clock: systemClock,
      log: logs.log,
      intervalMs: 10,
    });
    servers.push(server);
    return { server, logs };
  }

  it("retries what the server finds parked, answers with it, and leaves no file behind", async () => {
    const directory = retryRequestsDirectory(makeDataDir());
    const asked: string[] = [];
    const { server } = await serve(directory, async (id) => {
      asked.push(id);
      return id.startsWith("parked");
    });
    expect(await answersRetryRequests(directory, us)).toBe(true);
    expect(await answersRetryRequests(directory, { ...us, pid: us.pid + 1 })).toBe(false);

    const retried = await requestRetries({
      directory,
      ids: ["parked-1", "running-1", "parked-2", "parked-1"],
      clock: systemClock,
    });
    expect(retried).toEqual(["parked-1", "parked-2"]);
    // Each id once, in the order asked.
    expect(asked).toEqual(["parked-1", "running-1", "parked-2"]);
    expect(readdirSync(directory)).toEqual(["server.json"]);

    await server.stop();
    expect(await answersRetryRequests(directory, us)).toBe(false);
    expect(readdirSync(directory)).toEqual([]);
  });

  it("withdraws a request no server takes in time: nothing is retried, nothing is left", async () => {
    const directory = retryRequestsDirectory(makeDataDir());
    const clock = createFakeClock();
    const answer = await requestRetries({ directory, ids: ["parked-1"], clock, timeoutMs: 5_000 });
    expect(answer).toBeUndefined();
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5_000);
    expect(readdirSync(directory)).toEqual([]);
  });

  it("waits for a request the server has taken, and says so when no answer comes", async () => {
    const directory = retryRequestsDirectory(makeDataDir());
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started = false;
    await serve(directory, async () => {
      started = true;
      await held;
      return true;
    });
    // Taken, its retries under way: past the time to take it, it cannot be withdrawn any more.
    const waiting = requestRetries({
      directory,
      ids: ["parked-1"],
      clock: systemClock,
      timeoutMs: 200,
    });
    await expect(waiting).rejects.toThrow(
      "the server took the retry request but did not answer; `talos jobs` shows what is parked",
    );
    expect(started).toBe(true);
    release();
  });

  it("answers a request taken by a server that stopped in the middle of it, at the next start", async () => {
    const directory = retryRequestsDirectory(makeDataDir());
    const id = randomUUID();
    const logs = await captureLogs("info");
    // What a server killed while answering leaves: the request renamed, no result yet.
    await serveRetryRequests({
      directory,
      retryParked: async () => true,
      clock: systemClock,
      log: logs.log,
      intervalMs: 60_000,
    }).then((server) => server.stop());
    writeFileSync(join(directory, `${id}.taken.json`), JSON.stringify({ ids: ["parked-1"] }));
    const asked: string[] = [];
    await serve(directory, async (delivery) => (asked.push(delivery), true));
    await eventually(() => existsSync(join(directory, `${id}.result.json`)), "the answer");
    expect(JSON.parse(readFileSync(join(directory, `${id}.result.json`), "utf8"))).toEqual({
      retried: ["parked-1"],
    });
    expect(asked).toEqual(["parked-1"]);
    expect(existsSync(join(directory, `${id}.taken.json`))).toBe(false);
  });

  it("removes an unreadable request with a warning, and results and temporary files an hour old", async () => {
    const directory = retryRequestsDirectory(makeDataDir());
    const asked: string[] = [];
    const { logs } = await serve(directory, async (id) => (asked.push(id), true));
    const bad = randomUUID();
    writeFileSync(join(directory, `${bad}.request.json`), "{ not json");
    const stale = join(directory, `${randomUUID()}.result.json`);
    writeFileSync(stale, JSON.stringify({ retried: ["x"] }));
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, hoursAgo, hoursAgo);
    const torn = join(directory, `${randomUUID()}.request.json.123.abcd.tmp`);
    writeFileSync(torn, '{ "ids": [');
    utimesSync(torn, hoursAgo, hoursAgo);
    const fresh = join(directory, `${randomUUID()}.result.json`);
    writeFileSync(fresh, JSON.stringify({ retried: ["y"] }));
    await eventually(
      () =>
        !existsSync(stale) &&
        !existsSync(torn) &&
        !existsSync(join(directory, `${bad}.taken.json`)),
      "the removals",
    );
    expect(existsSync(fresh)).toBe(true);
    expect(asked).toEqual([]);
    expect(logs.text()).toContain("a retry request that cannot be read was removed");
    // Still answering.
    expect(await requestRetries({ directory, ids: ["p"], clock: systemClock })).toEqual(["p"]);
  });
});
