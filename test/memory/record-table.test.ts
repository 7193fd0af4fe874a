import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RecordMetadata } from "../../src/memory/memory-store.js";
import { encodeColumns, RecordTable } from "../../src/memory/record-table.js";

const sha = (text: string) => createHash("sha256").update(text).digest("base64");

const RECORDS: Array<[RecordMetadata, string]> = [
  [
    {
      id: "issue-12",
      kind: "issue",
      repo: "acme/widgets",
      number: 12,
      author: "alice",
      url: "https://github.com/acme/widgets/issues/12",
      createdAt: "2026-11-01T10:00:00.000Z",
      state: "open",
    },
    sha("one"),
  ],
  [
    {
      id: "pull_request-7",
      kind: "pull_request",
      repo: "acme/widgets",
      number: 7,
      author: "bob",
      url: "https://github.com/acme/widgets/pull/7",
      createdAt: "2020-01-02T03:04:05.678Z",
      state: "closed",
    },
    sha("two"),
  ],
  [
    {
      id: "issue-3",
      kind: "issue",
      repo: "acme/widgets",
      number: 3,
      url: "https://ghe.example/acme/widgets/issues/3",
      createdAt: "2026-11-01T10:00:00Z",
      metadata: { label: "bug", weight: 2, pinned: true },
    },
    "not-a-sha",
  ],
  [
    { id: "note-5", kind: "note", repo: "other/repo", createdAt: "1999-12-31T23:59:59.999Z" },
    sha(""),
  ],
];

// `get` fills every field, absent ones as undefined: compare with those dropped.
const defined = (record: RecordMetadata) =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));

describe("the record table", () => {
  it("gives back every record as it was set: URLs of any host, odd times and hashes, metadata", () => {
    const table = new RecordTable();
    // Slots far apart, so that the columns grow between them.
    const slots = [0, 1, 70, 5_000];
    RECORDS.forEach(([record, hash], i) => table.set(slots[i]!, record, hash));
    RECORDS.forEach(([record, hash], i) => {
      const slot = slots[i]!;
      expect(defined(table.get(slot, record.id))).toEqual(record);
      expect(table.hash(slot)).toBe(hash);
      expect(table.kind(slot)).toBe(record.kind);
      expect(table.state(slot)).toBe(record.state);
      expect(table.createdAt(slot)).toBe(Date.parse(record.createdAt));
    });
  });

  it("gives back hashes that look like a sha256 in base64 but are not one as written", () => {
    const table = new RecordTable();
    const [record] = RECORDS[0]!;
    const canonical = sha("three");
    const hashes = [
      canonical,
      // Padding bits set: decodes to the same 32 bytes, which encode back to another text.
      `${canonical.slice(0, 42)}${String.fromCharCode(canonical.charCodeAt(42) + 1)}=`,
      // base64url, and characters base64 skips: neither decodes to 32 bytes as written.
      canonical.replaceAll("+", "-").replaceAll("/", "_").replace(/^./, "-"),
      `!${canonical.slice(1)}`,
      `${canonical.slice(0, 43)}A`,
    ];
    expect(new Set(hashes).size).toBe(hashes.length);
    hashes.forEach((hash, slot) => table.set(slot, record, hash));
    hashes.forEach((hash, slot) => expect(table.hash(slot)).toBe(hash));
    // Only the first is kept in the column; the others are kept aside.
    const columnsOnly = new RecordTable();
    hashes.forEach((_, slot) => columnsOnly.set(slot, record, canonical));
    expect(table.bytes - columnsOnly.bytes).toBeGreaterThan(0);
  });

  it("replaces a slot whole, and forgets what was kept aside for it", () => {
    const table = new RecordTable();
    const [odd, oddHash] = RECORDS[2]!;
    table.set(9, odd, oddHash);
    const withAside = table.bytes;
    const [plain, plainHash] = RECORDS[0]!;
    table.set(9, plain, plainHash);
    expect(defined(table.get(9, plain.id))).toEqual(plain);
    expect(table.hash(9)).toBe(plainHash);
    expect(table.bytes).toBeLessThan(withAside);
    table.clear(9);
    expect(table.bytes).toBeLessThan(withAside);
  });

  it("loads rows' columns as `set` keeps each record, into slots of any order, replacing theirs", () => {
    const columns = encodeColumns(RECORDS.map(([record, hash]) => ({ record, hash })));
    // Each distinct repository, author and state once; 0 stands for none.
    expect(columns.strings).toEqual([
      null,
      "acme/widgets",
      "alice",
      "open",
      "bob",
      "closed",
      "other/repo",
    ]);
    expect(Object.keys(columns.rare)).toEqual(["2"]);
    const table = new RecordTable();
    const slots = [5_000, 70, 1, 0];
    // What a slot held before is replaced, what was kept aside for it too.
    table.set(1, RECORDS[0]![0], "kept-aside");
    table.setColumns(slots, columns);
    const byOne = new RecordTable();
    RECORDS.forEach(([record, hash], i) => byOne.set(slots[i]!, record, hash));
    RECORDS.forEach(([record, hash], i) => {
      const slot = slots[i]!;
      expect(defined(table.get(slot, record.id))).toEqual(record);
      expect(table.hash(slot)).toBe(hash);
      expect(table.createdAt(slot)).toBe(Date.parse(record.createdAt));
    });
    expect(table.bytes).toBe(byOne.bytes);
  });
});
