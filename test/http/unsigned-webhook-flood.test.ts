import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WEBHOOK_MAX_BYTES } from "../../src/http/limit-webhook-bodies.js";
import { ROOT } from "../helpers/server-process.js";

/** Runs the child server with one unsigned delivery of `bytes`; its exit and what it said. */
function flood(bytes: number) {
  const child = spawnSync(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test/helpers/unsigned-flood-child.ts"), String(bytes)],
    { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
  );
  return {
    status: child.status,
    signal: child.signal,
    said: child.stdout.trim(),
    fatal: /Fatal JavaScript invalid size error/.test(child.stderr),
  };
}

describe("one unsigned delivery under the 25 MB cap (anyone who can reach the public port)", () => {
  it("does not end the server: its body, logged whole, is not scrubbed into a V8 fatal error", () => {
    // Under the cap, so the limit lets it through to the signature check.
    const bytes = WEBHOOK_MAX_BYTES - 1024;
    const result = flood(bytes);
    expect(result.fatal).toBe(false);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.said || "{}")).toMatchObject({ status: 400 });
  }, 180_000);
});
