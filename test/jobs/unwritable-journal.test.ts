import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createTestApp, loadFixture, makeDataDir } from "../helpers/test-app.js";

async function fileHandlePrototype(directory: string): Promise<FileHandle> {
  const probe = await open(join(directory, "probe"), "w");
  const prototype = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  return prototype;
}

describe("a delivery the journal cannot take (a full disk)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("is refused in short log lines, never with its payload, and counted", async () => {
    const dataDir = makeDataDir();
    const app = await createTestApp({ dataDir, logLevel: "warn" });
    const payload = loadFixture<Record<string, unknown>>("issue_comment.created.help.json");
    // A payload as GitHub sends them: large, and the user's text.
    const marker = "PAYLOAD-TEXT-THAT-MUST-NOT-BE-LOGGED";
    (payload.issue as { body: string }).body = marker.repeat(1_000);
    const prototype = await fileHandlePrototype(dataDir);
    vi.spyOn(prototype, "appendFile").mockRejectedValue(
      Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }),
    );
    await expect(
      app.probot.receive({ id: "disk-full-1", name: "issue_comment", payload } as never),
    ).rejects.toThrow(/ENOSPC/);
    vi.restoreAllMocks();
    // Let the logger's streams flush.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const text = app.logs.text();
    expect(text).toMatch(/ENOSPC/);
    expect(text).not.toContain(marker);
    expect(app.logs.lines().find((l) => l.msg === "delivery refused: not journaled")).toMatchObject(
      { level: 40, reason: "error" },
    );
    const refused = (await app.talos.metrics.jobsRefused.get()).values;
    expect(refused).toEqual([expect.objectContaining({ labels: { reason: "error" }, value: 1 })]);
  });
});
