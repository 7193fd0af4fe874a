import { describe, expect, it } from "vitest";
import {
  fingerprintText,
  MAX_SHARED,
  NearDuplicateIndex,
  normalise,
} from "../../src/memory/near-duplicate.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

const PANIC =
  "thread 'rustc' panicked at 'assertion failed: !ty.has_escaping_regions()', src/librustc/middle/traits.rs:123:5";
const TRACE = [
  "stack backtrace:",
  "   1:     0x7f3d8c1a2b3c - sys::backtrace::write::h1a2b3c4d5e6f7a8b",
  "   2:     0x7f3d8c1a2b3d - rt::unwind::begin_unwind_inner::h0123456789abcdef",
  "   3:     0x7f3d8c1a2b3e - middle::traits::select::confirm_candidate::h9f8e7d6c5b4a3928",
  "   4:     0x7f3d8c1a2b3f - middle::traits::select::select::h1111222233334444",
  "   5:     0x7f3d8c1a2b40 - middle::typeck::check::resolve_obligations::h5555666677778888",
].join("\n");

describe("near-duplicate fingerprints", () => {
  it("are the same for one panic on another machine, path, line and version", () => {
    const other = PANIC.replace("src/librustc", "/home/me/rust/src/librustc").replace(
      "123:5",
      "130:9",
    );
    expect(fingerprintText(`It crashed:\n${other}`)).toEqual(fingerprintText(PANIC));
    expect(fingerprintText(PANIC)).toHaveLength(1);
    expect(fingerprintText(PANIC.replace("escaping", "free"))).not.toEqual(fingerprintText(PANIC));
  });

  it("read error lines, with or without a code and a location, and the older task failures", () => {
    const a = fingerprintText(
      "foo.rs:12:5: 12:10 error: mismatched types: expected `u32`, found `i64`",
    );
    const b = fingerprintText(
      "bar.rs:99:1: 99:4 error: mismatched types: expected `u32`, found `i64`",
    );
    expect(a).toEqual(b);
    expect(
      fingerprintText("error[E0308]: mismatched types: expected `u32`, found `i64`"),
    ).toHaveLength(1);
    expect(
      fingerprintText("task '<main>' failed at 'index out of bounds: the len is 3', foo.rs:1"),
    ).toHaveLength(1);
    // Too short to tell one bug from another.
    expect(fingerprintText("error: aborting\npanicked at 'oops', a.rs:1")).toEqual([]);
  });

  it("take a trace's first frames past the runtime's own, whatever the addresses and hashes", () => {
    const moved = TRACE.replace(/0x7f3d8c/g, "0x55aa01").replace(
      /::h[0-9a-f]{16}/g,
      "::h0000000000000000",
    );
    expect(fingerprintText(moved)).toEqual(fingerprintText(TRACE));
    expect(fingerprintText(TRACE)).toHaveLength(1);
    // The runtime's frames alone say nothing.
    expect(fingerprintText(TRACE.split("\n").slice(0, 3).join("\n"))).toEqual([]);
  });

  it("normalise numbers, hex addresses, symbol hashes and paths away", () => {
    expect(
      normalise("at 0xdeadbeef src/main.rs:12:5 foo::bar::h0123456789abcdef called 3 times"),
    ).toBe("at foo::bar called times");
  });

  it("are read in linear time on hostile text", async () => {
    await expectLinearTime(fingerprintText, {
      fragments: [
        "error: ",
        "panicked at '",
        "failed at '",
        "   1: 0x1 - a::b\n",
        "#1 0x1 in f ()\n",
        "at f (a.js:1:2)\n",
        "error[E0308]:",
        "0x",
        "::h",
        "'",
        "a",
        " ",
        "\n",
      ],
    });
  }, 120_000);
});

describe("the near-duplicate index", () => {
  it("finds the records that quote the same panic, most shared first, and forgets removed ones", () => {
    const index = new NearDuplicateIndex();
    index.set("one", `Crash\n\n${PANIC}`);
    index.set("both", `Crash\n\n${PANIC}\n${TRACE}`);
    index.set("none", "Crash\n\nIt crashes.");
    expect([...index.match(`${PANIC}\n${TRACE}`)]).toEqual([
      ["both", 2],
      ["one", 1],
    ]);
    expect([...index.match(PANIC, (id) => id !== "one").keys()]).toEqual(["both"]);
    index.set("both", "Crash\n\nfixed text");
    index.delete("one");
    expect(index.match(PANIC).size).toBe(0);
    expect(index.bytes).toBe(0);
  });

  it("ignores a message that too many records share: it is common, not a signature", () => {
    const index = new NearDuplicateIndex();
    for (let i = 0; i <= MAX_SHARED; i++) index.set(`issue-${i}`, PANIC);
    expect(index.match(PANIC).size).toBe(0);
    index.delete("issue-0");
    expect(index.match(PANIC).size).toBe(MAX_SHARED);
  });

  it("does not count the query's own record among those that share a message", () => {
    const index = new NearDuplicateIndex();
    for (let i = 1; i <= MAX_SHARED; i++) index.set(`issue-${i}`, PANIC);
    index.set("issue-100", PANIC);
    const others = (id: string) => id !== "issue-100";
    expect(index.match(PANIC, others).size).toBe(0);
    expect(index.match(PANIC, others, ["issue-100"]).size).toBe(MAX_SHARED);
  });
});
