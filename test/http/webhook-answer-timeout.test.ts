import { createHmac } from "node:crypto";
import { pino } from "pino";
import { Probot } from "probot";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  limitWebhookBodies,
  WEBHOOK_ANSWER_TIMEOUT_MS,
} from "../../src/http/limit-webhook-bodies.js";
import { TEST_PRIVATE_KEY, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

/** A signed delivery, its body already read (`req.body`, which the middleware takes as it is). */
function delivery(body: string) {
  return {
    method: "POST",
    url: "/api/github/webhooks",
    complete: true,
    headers: {
      "content-type": "application/json",
      "x-github-event": "label",
      "x-github-delivery": "slow-journal",
      "x-hub-signature-256": `sha256=${createHmac("sha256", TEST_WEBHOOK_SECRET).update(body).digest("hex")}`,
      "content-length": String(Buffer.byteLength(body)),
    },
    body,
  };
}

/** What the middleware answered, and when. */
function response() {
  const answers: Array<{ status: number; body: unknown }> = [];
  const res = {
    writeHead: (status: number) => ({
      end: (body?: unknown) => void answers.push({ status, body }),
    }),
  };
  return { answers, res };
}

describe("the webhook route's answer", () => {
  afterEach(() => void vi.useRealTimers());

  it("waits for the delivery's handler past GitHub's own 10 s, rather than answer 202 before it is journaled", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const probot = new Probot({
      appId: 1,
      privateKey: TEST_PRIVATE_KEY,
      secret: TEST_WEBHOOK_SECRET,
      log: pino({ level: "silent" }),
    });
    limitWebhookBodies(probot);
    let journaled!: () => void;
    // The journal's write, held up (a compaction, a slow disk).
    probot.onAny(() => new Promise<void>((resolve) => (journaled = resolve)));
    const middleware = await probot.getNodeMiddleware();
    const { answers, res } = response();
    const body = JSON.stringify({ action: "created", label: { name: "bug" } });

    const handled = middleware(delivery(body) as never, res as never);
    await vi.advanceTimersByTimeAsync(60_000);
    // Probot's own middleware had answered "202 still processing" at 9 s.
    expect(answers).toEqual([]);

    journaled();
    await handled;
    expect(answers).toEqual([{ status: 200, body: "ok\n" }]);
    expect(WEBHOOK_ANSWER_TIMEOUT_MS).toBeGreaterThan(10_000);
  });
});
