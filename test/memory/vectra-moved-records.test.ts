import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeDataDir } from "../helpers/test-app.js";
import { ISSUE_TEXTS, issueMemory, openTestStore } from "../helpers/test-memory.js";

const TEXTS = ISSUE_TEXTS;

/** A lock that locks nothing: the store can be left open, as a crash leaves one. */
const crashable = { lockDirectory: async () => async () => undefined };

/** A memory of 8-record segments from before the snapshot (no segment size in its manifest). */
async function oldMemoryWithLog(
  change: (store: Awaited<ReturnType<typeof openTestStore>>) => Promise<void>,
) {
  const directory = makeDataDir();
  const store = await openTestStore(directory, { segmentSize: 8 });
  await store.addMany(
    TEXTS.map((text, i) =>
      issueMemory(i + 1, text, { metadata: { updatedAt: "2026-11-02T00:00:00Z" } }),
    ),
  );
  await store.close();
  // The old version crashed after acknowledging a change: it is in the log only.
  const crashed = await openTestStore(directory, { segmentSize: 8, ...crashable });
  await change(crashed);
  const manifestFile = join(directory, "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as { segmentSize?: number };
  delete manifest.segmentSize;
  writeFileSync(manifestFile, JSON.stringify(manifest));
  return directory;
}

describe("records moved out of a larger segment, with a log to replay", () => {
  it("keeps a record removed in the log removed", async () => {
    // issue-6 is at position 5 of the 8-record segment: it moves when segments hold 4.
    const directory = await oldMemoryWithLog((store) =>
      store.remove("issue-6").then(() => undefined),
    );
    const store = await openTestStore(directory, { segmentSize: 4 });
    try {
      expect(await store.get("issue-6")).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("keeps the newer text the log holds for a moved record", async () => {
    const directory = await oldMemoryWithLog((store) =>
      store
        .add(issueMemory(6, "Login token expires after one minute (edited)"))
        .then(() => undefined),
    );
    const store = await openTestStore(directory, { segmentSize: 4 });
    try {
      expect((await store.get("issue-6"))?.text).toBe(
        "Login token expires after one minute (edited)",
      );
    } finally {
      await store.close();
    }
  });

  it("keeps the moved record when the log holds an older version of it, refused then", async () => {
    const directory = await oldMemoryWithLog((store) =>
      store
        .add(
          issueMemory(6, "An edit delivered late", {
            metadata: { updatedAt: "2026-11-01T00:00:00Z" },
          }),
        )
        .then(() => undefined),
    );
    const store = await openTestStore(directory, { segmentSize: 4 });
    try {
      expect((await store.get("issue-6"))?.text).toBe(TEXTS[5]);
    } finally {
      await store.close();
    }
  });
});
