import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { answerId, forgetMadeSince, summaryId } from "../../src/memory/memory-inputs.js";
import type { MemoryStore } from "../../src/memory/memory-store.js";
import { dropSchema, freshSchema, requirePostgres } from "../helpers/shared-services.js";
import { openPostgresMemory, openTestStore, said } from "../helpers/test-memory.js";

// A person deletes a comment of #7 that held a secret: the summary and answers made since may
// quote it, and `ask` recalls them by their words.
const SECRET = "sk-live-4242";
const WRITTEN = "2026-11-01T10:00:00Z";
const at = (createdAt: string) => ({ createdAt });

async function seed(store: Pick<MemoryStore, "addMany">) {
  await store.addMany([
    { ...said(summaryId(7), "answer", 7, `Summary of #7: use ${SECRET}`), ...at(WRITTEN) },
    {
      ...said(answerId(71), "answer", 7, `Answer: it is ${SECRET}`),
      ...at("2026-11-01T11:00:00Z"),
    },
    // Made before the comment was written, or in another thread: it cannot quote it.
    { ...said(answerId(70), "answer", 7, "Answer: rotate the key"), ...at("2026-11-01T09:59:59Z") },
    { ...said(answerId(80), "answer", 8, "Answer: widgets export to CSV"), ...at(WRITTEN) },
    { ...said("note-72", "note", 7, "Keys rotate monthly"), ...at(WRITTEN) },
  ]);
}

const IDS = [answerId(71), summaryId(7), answerId(70), answerId(80), "note-72", answerId(99)];

async function expectForgotten(store: MemoryStore) {
  await seed(store);

  const removed = await forgetMadeSince(store, IDS, { number: 7, since: WRITTEN });

  expect(removed).toEqual([answerId(71), summaryId(7)]);
  expect((await store.list()).map((r) => r.id).sort()).toEqual(
    [answerId(70), answerId(80), "note-72"].sort(),
  );
  const hits = await store.search(SECRET, { k: 5, kinds: ["note", "answer"] });
  expect(hits.filter((hit) => hit.record.text.includes(SECRET))).toEqual([]);
  // Again (a redelivery, a retried job): nothing more goes.
  expect(await forgetMadeSince(store, IDS, { number: 7, since: WRITTEN })).toEqual([]);
}

describe("forgetMadeSince", () => {
  it("forgets the thread's records made since the comment, in the vectra store", async () => {
    const store = await openTestStore(mkdtempSync(join(tmpdir(), "talos-forget-since-")));
    onTestFinished(() => store.close());
    await expectForgotten(store);
  });

  it("forgets the thread's records made since the comment, in PostgreSQL", async (test) => {
    if (!(await requirePostgres("forgetMadeSince in PostgreSQL"))) return test.skip();
    const schema = freshSchema("talos_test");
    const { memory, close } = await openPostgresMemory(schema);
    onTestFinished(async () => {
      await close();
      await dropSchema(schema);
    });
    const repo = await memory.open({ installation: 1, repository: 7, name: "acme/widgets" });
    await expectForgotten(repo);
  });
});
