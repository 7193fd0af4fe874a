import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  appendSegment,
  encodeSegment,
  LocalFileStorage,
  LocalIndex,
  readSegment,
  AtomicFileStorage,
  writeSegment,
  SEGMENT_CODEC,
  type SegmentRecord,
} from "../../src/memory/vectra-files.js";
import { makeDataDir } from "../helpers/test-app.js";

const ROOT = join(import.meta.dirname, "..", "..");

const records: SegmentRecord[] = [
  {
    id: "issue-1",
    vector: Float32Array.from([0.5, -0.25, 1e-7, 3.4e38, -0]),
    norm: 1,
    metadata: {
      kind: "issue",
      text: "Ünïcödé ✓ and a long text ".repeat(200),
      empty: "",
      number: 12,
      zero: 0,
      negative: -3.5,
      open: true,
      closed: false,
    },
  },
  { id: "", vector: new Float32Array(0), norm: 0, metadata: {} },
  {
    id: "note-99",
    vector: Float32Array.from({ length: 1536 }, (_, i) => Math.sin(i)),
    norm: 1,
    metadata: { "x.label": "bug" },
  },
];

// The pieces encodeSegment gives, as the file holds them.
const encoded = (set: SegmentRecord[]) => Buffer.concat(encodeSegment(set));

describe("vectra segment files", () => {
  it("are read and written without loading the rest of vectra, in the whole app", () => {
    // A child process: this one has loaded all of vectra by now (the test below imports it).
    const script = `
      import { createRequire } from "node:module";
      await import(${JSON.stringify(join(ROOT, "src/index.ts"))});
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(loaded.filter((file) => /[\\/](vectra|gpt-tokenizer)[\\/]/.test(file))));
    `;
    const child = spawnSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    expect(child.status, child.stderr).toBe(0);
    const files = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as string[];
    expect(files.some((file) => file.endsWith("LocalIndex.js"))).toBe(true);
    // vectra's entry point, and the GPT-3 tokenizer's ranks it loads, are not.
    expect(
      files.filter(
        (file) => file.includes("gpt-tokenizer") || file.endsWith("vectra/lib/index.js"),
      ),
    ).toEqual([]);
  });

  it("use vectra 0.15.0's own classes, loaded without the rest of vectra (an upgrade that moves them fails here)", async () => {
    const require = createRequire(import.meta.url);
    const { version } = JSON.parse(
      readFileSync(join(dirname(require.resolve("vectra")), "..", "package.json"), "utf8"),
    ) as { version: string };
    expect(version).toBe("0.15.0");
    // Required by file beside vectra's entry point: the very classes it exports.
    const vectra = await import("vectra");
    expect(LocalIndex).toBe(vectra.LocalIndex);
    expect(LocalFileStorage).toBe(vectra.LocalFileStorage);
    expect(SEGMENT_CODEC).toBeInstanceOf(vectra.ProtobufCodec);
  });

  it("are written byte for byte as vectra's protobuf codec writes them (a vectra upgrade that changes the format fails here)", () => {
    for (const set of [[], records.slice(0, 1), records]) {
      const ours = encoded(set);
      const theirs = SEGMENT_CODEC.serializeIndex({
        version: 1,
        metadata_config: { indexed: [] },
        items: set.map((record) => ({ ...record, vector: Array.from(record.vector) })),
      });
      expect(ours.equals(theirs)).toBe(true);
    }
  });

  it("are read back by vectra with every value", () => {
    const { items } = SEGMENT_CODEC.deserializeIndex(encoded(records));
    expect(items.map((item) => item.id)).toEqual(["issue-1", "", "note-99"]);
    expect(items[0]!.metadata).toEqual(records[0]!.metadata);
    expect(items[2]!.vector).toEqual(Array.from(records[2]!.vector));
  });

  it("take appended records as their last ones, and refuse to append to a file of another size", async () => {
    const file = join(makeDataDir(), "segment-000001.pb");
    writeFileSync(file, encoded(records.slice(0, 1)));
    const size = readFileSync(file).length;
    expect(await appendSegment(file, records.slice(0, 1), size + 1)).toBeUndefined();
    expect(readFileSync(file).length).toBe(size);
    const grown = await appendSegment(file, records.slice(1), size);
    const content = readFileSync(file);
    expect(grown).toBe(content.length);
    // The same bytes as the whole segment written at once.
    expect(content.equals(encoded(records))).toBe(true);
    const { items } = SEGMENT_CODEC.deserializeIndex(content);
    expect(items.map((item) => item.id)).toEqual(["issue-1", "", "note-99"]);
  });

  it("are written whole from their pieces when a segment is full (two pieces a record)", async () => {
    const file = join(makeDataDir(), "segment-000002.pb");
    const full = Array.from({ length: 1_000 }, (_, i) => ({
      id: `issue-${i}`,
      vector: Float32Array.from([i, -i, 0.5]),
      norm: 1,
      metadata: { number: i },
    }));
    const bytes = await writeSegment(file, full);
    expect(bytes).toBe(readFileSync(file).length);
    const items = await readSegment(new AtomicFileStorage(), file);
    expect(items.map((item) => item.id)).toEqual(full.map((record) => record.id));
    expect(items[999]!.vector).toEqual([999, -999, 0.5]);
  });
});
