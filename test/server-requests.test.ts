import { randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock, type Clock } from "../src/clock.js";
import { Retried, retryRequestHandler } from "../src/jobs/retry-request.js";
import {
  answersRequests,
  requestsDirectory,
  RequestFailedError,
  sendRequest,
  serveRequests,
  type RequestHandler,
  type RequestServer,
} from "../src/server-requests.js";
import { eventually } from "./helpers/eventually.js";
import { createFakeClock } from "./helpers/fake-clock.js";
import { captureLogs, makeDataDir } from "./helpers/test-app.js";

const us = { pid: process.pid, host: hostname() };

/** What `talos jobs retry` asks: the ids retried, or undefined when not taken in time. */
async function requestRetries(options: {
  directory: string;
  ids: string[];
  clock: Clock;
  timeoutMs?: number;
}): Promise<string[] | undefined> {
  const answer = await sendRequest({
    directory: options.directory,
    request: { kind: "retry", ids: options.ids },
    clock: options.clock,
    timeoutMs: options.timeoutMs,
    answerTimeoutMs: options.timeoutMs,
  });
  return answer && Retried.parse(answer.value);
}

describe("requests of commands beside a running server: `talos jobs retry`", () => {
  const servers: RequestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function serve(directory: string, retryParked: (id: string) => Promise<boolean>) {
    const logs = await captureLogs("info");
    const server = await serveRequests({
      directory,
      handlers: { retry: retryRequestHandler(retryParked, logs.log) },
      clock: systemClock,
      log: logs.log,
      intervalMs: 10,
    });
    servers.push(server);
    return { server, logs };
  }

  it("retries what the server finds parked, answers with it, and leaves no file behind", async () => {
    const directory = requestsDirectory(makeDataDir());
    const asked: string[] = [];
    const { server } = await serve(directory, async (id) => {
      asked.push(id);
      return id.startsWith("parked");
    });
    expect(await answersRequests(directory, us)).toBe(true);
    expect(await answersRequests(directory, { ...us, pid: us.pid + 1 })).toBe(false);

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
    expect(await answersRequests(directory, us)).toBe(false);
    expect(readdirSync(directory)).toEqual([]);
  });

  it("withdraws a request no server takes in time: nothing is retried, nothing is left", async () => {
    const directory = requestsDirectory(makeDataDir());
    const clock = createFakeClock();
    const answer = await requestRetries({ directory, ids: ["parked-1"], clock, timeoutMs: 5_000 });
    expect(answer).toBeUndefined();
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5_000);
    expect(readdirSync(directory)).toEqual([]);
  });

  it("waits for a request the server has taken, and says so when no answer comes", async () => {
    const directory = requestsDirectory(makeDataDir());
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
    await expect(waiting).rejects.toThrow("the server took the request but did not answer");
    expect(started).toBe(true);
    release();
  });

  it("answers a request taken by a server that stopped in the middle of it, at the next start", async () => {
    const directory = requestsDirectory(makeDataDir());
    const id = randomUUID();
    const logs = await captureLogs("info");
    // What a server killed while answering leaves: the request renamed, no result yet.
    await serveRequests({
      directory,
      handlers: {},
      clock: systemClock,
      log: logs.log,
      intervalMs: 60_000,
    }).then((server) => server.stop());
    writeFileSync(
      join(directory, `${id}.taken.json`),
      JSON.stringify({ kind: "retry", ids: ["parked-1"] }),
    );
    const asked: string[] = [];
    await serve(directory, async (delivery) => (asked.push(delivery), true));
    // The answer is written, then the taken request removed: the test waits for both.
    await eventually(
      () =>
        existsSync(join(directory, `${id}.answer.json`)) &&
        !existsSync(join(directory, `${id}.taken.json`)),
      "the answer, and the taken request gone",
    );
    expect(JSON.parse(readFileSync(join(directory, `${id}.answer.json`), "utf8"))).toEqual({
      value: ["parked-1"],
    });
    expect(asked).toEqual(["parked-1"]);
  });

  it("answers an unreadable request with an error, and removes answers and temporary files an hour old", async () => {
    const directory = requestsDirectory(makeDataDir());
    const asked: string[] = [];
    const { logs } = await serve(directory, async (id) => (asked.push(id), true));
    const bad = randomUUID();
    writeFileSync(join(directory, `${bad}.request.json`), "{ not json");
    const stale = join(directory, `${randomUUID()}.answer.json`);
    writeFileSync(stale, JSON.stringify({ value: ["x"] }));
    const hoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, hoursAgo, hoursAgo);
    const torn = join(directory, `${randomUUID()}.request.json.123.abcd.tmp`);
    writeFileSync(torn, '{ "ids": [');
    utimesSync(torn, hoursAgo, hoursAgo);
    const fresh = join(directory, `${randomUUID()}.answer.json`);
    writeFileSync(fresh, JSON.stringify({ value: ["y"] }));
    await eventually(
      () =>
        !existsSync(stale) &&
        !existsSync(torn) &&
        !existsSync(join(directory, `${bad}.taken.json`)),
      "the removals",
    );
    expect(existsSync(fresh)).toBe(true);
    expect(asked).toEqual([]);
    expect(JSON.parse(readFileSync(join(directory, `${bad}.answer.json`), "utf8"))).toEqual({
      error: "the request is not JSON of a request, or is over 4194304 bytes",
    });
    expect(logs.text()).toContain("a request that cannot be read was answered with an error");
    // Still answering.
    expect(await requestRetries({ directory, ids: ["p"], clock: systemClock })).toEqual(["p"]);
  });
});

describe("requests of commands beside a running server: the protocol", () => {
  const servers: RequestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function serve(directory: string, handlers: Record<string, RequestHandler>) {
    const logs = await captureLogs("info");
    // Read once a minute: what answers sooner is the watch on the directory.
    const server = await serveRequests({
      directory,
      handlers,
      clock: systemClock,
      log: logs.log,
      intervalMs: 60_000,
    });
    servers.push(server);
    return logs;
  }

  it("answers an entry it cannot remove once, not again on every pass its own answer wakes", async () => {
    const directory = requestsDirectory(makeDataDir());
    const logs = await serve(directory, {});
    // A directory where a request file is expected: taken (renamed), unreadable, answered; it
    // cannot be unlinked, and each answer written wakes the watch for another pass.
    const id = randomUUID();
    mkdirSync(join(directory, `${id}.request.json`));
    await eventually(() => existsSync(join(directory, `${id}.answer.json`)), "the answer");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const answered = logs
      .text()
      .split("\n")
      .filter((line) => line.includes("a request that cannot be read was answered with an error"));
    expect(answered).toHaveLength(1);
    expect(logs.text()).toContain("an answered request cannot be removed");
  });

  it("answers as soon as a request is written, by watching the directory", async () => {
    const directory = requestsDirectory(makeDataDir());
    const seen: unknown[] = [];
    await serve(directory, {
      echo: async (request) => (seen.push(request), { echoed: (request as { n: number }).n }),
    });
    const answer = await sendRequest({
      directory,
      request: { kind: "echo", n: 7 },
      clock: systemClock,
      timeoutMs: 5_000,
    });
    expect(answer).toEqual({ value: { echoed: 7 } });
    expect(seen).toEqual([{ kind: "echo", n: 7 }]);
    expect(readdirSync(directory)).toEqual(["server.json"]);
  });

  it("answers a handler's error, and a kind it does not know, as errors the command throws", async () => {
    const directory = requestsDirectory(makeDataDir());
    const logs = await serve(directory, {
      failing: () => Promise.reject(new Error("the memory is locked by pid 42")),
    });
    const send = (kind: string) =>
      sendRequest({ directory, request: { kind }, clock: systemClock, timeoutMs: 5_000 });
    await expect(send("failing")).rejects.toThrow(
      new RequestFailedError("the memory is locked by pid 42"),
    );
    await expect(send("unknown")).rejects.toThrow(
      new RequestFailedError('this server does not answer requests of kind "unknown"'),
    );
    // Not an own property: a request cannot name the handlers' prototype.
    await expect(send("toString")).rejects.toThrow(RequestFailedError);
    // Too big to be read: answered at once all the same, rather than left to time out.
    await expect(
      sendRequest({
        directory,
        request: { kind: "failing", padding: "x".repeat(5 * 1024 * 1024) },
        clock: systemClock,
        timeoutMs: 5_000,
      }),
    ).rejects.toThrow("the request is not JSON of a request, or is over 4194304 bytes");
    expect(logs.text()).toContain("a command's request failed");
    expect(readdirSync(directory)).toEqual(["server.json"]);
  });

  it("stops waiting for a request taken once its server is gone", async () => {
    const directory = requestsDirectory(makeDataDir());
    let started = false;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await serve(directory, { slow: () => ((started = true), held) });
    let serving = true;
    const waiting = sendRequest({
      directory,
      request: { kind: "slow" },
      clock: systemClock,
      timeoutMs: 100,
      answerTimeoutMs: 60_000,
      serving: () => serving,
    });
    await eventually(() => started, "the request taken");
    serving = false;
    await expect(waiting).rejects.toThrow(
      "the server took the request but stopped before answering: some of it may be done",
    );
    release();
  });
});
