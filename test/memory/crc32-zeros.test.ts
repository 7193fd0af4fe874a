import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32Zeros } from "../../src/memory/crc32-zeros.js";

describe("crc32Zeros", () => {
  it("is node:zlib's crc32 of that many zero bytes, from any crc", () => {
    for (const length of [0, 1, 2, 3, 7, 8, 1_536, 4_096, 1_535_999, 1_536_000])
      for (const crc of [0, 1, 0xffffffff, 0x12345678, crc32("hello")])
        expect(crc32Zeros(crc, length)).toBe(crc32(Buffer.alloc(length), crc));
  });

  it("extends a crc taken on bytes as the crc of the bytes and the zeros", () => {
    const bytes = Buffer.from("a segment's first rows");
    const whole = Buffer.concat([bytes, Buffer.alloc(3_000)]);
    expect(crc32Zeros(crc32(bytes), 3_000)).toBe(crc32(whole));
  });
});
