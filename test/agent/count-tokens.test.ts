import { readFileSync } from "node:fs";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import { describe, expect, it } from "vitest";
import { createTokenCounter, UTF8_TOKEN_BOUND } from "../../src/agent/count-tokens.js";
import {
  expectLinearTime,
  hostileText,
  mixedHostileText,
  measureGrowth,
} from "../helpers/hostile-input.js";

// The reference: js-tiktoken encoding each text whole (quadratic on long runs: short texts only).
const reference = new Tiktoken(cl100k);
const encodeWhole = (text: string) => reference.encode(text, [], []).length;
const counter = createTokenCounter();

const CJK = "保存文件时编辑器崩溃错误日志显示写入缓冲区出现空指针异常";
// Base64 of bytes 0..255: letters, digits, `+` and `/`, and no whitespace.
const BASE64 = Buffer.from(Array.from({ length: 192 }, (_, i) => i)).toString("base64");
const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** CJK characters in no order (a fixed one), so that no stretch of the text repeats. */
function randomCjk(length: number): string {
  let seed = 1;
  return Array.from({ length }, () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return String.fromCharCode(0x4e00 + (seed % 20_000));
  }).join("");
}

/** Texts of every shape a counter might get wrong, short enough to encode whole. */
const SAMPLES: Record<string, string> = {
  english: README.slice(0, 3_000),
  "CJK, no spaces": hostileText(CJK, 600),
  "CJK with punctuation": hostileText(`${CJK}，${CJK.slice(5)}。`, 600),
  "a × n": "a".repeat(2_000),
  base64: hostileText(BASE64, 1_500),
  "minified code": hostileText("function(a,b){return a.map(c=>c*2).filter(Boolean)};", 1_500),
  "hostile mix": mixedHostileText(1_500),
  "spaces and line breaks": hostileText("  \n\t\n\n   x.\n\n", 1_500),
  numbers: hostileText("1234567890", 1_000),
  "special tokens": hostileText("<|endoftext|> <|fim_prefix|>x", 600),
  "emoji and astral letters": hostileText("😀𠀀𝟏 é\u0301", 600),
  "lone surrogates": hostileText("a\ud800b\udc00", 600),
};

describe("counting tokens", () => {
  it("counts ordinary English as encoding it whole does, within 1%", () => {
    for (const text of [
      README,
      readFileSync(new URL("../../prompts/system.md", import.meta.url), "utf8"),
    ]) {
      const whole = encodeWhole(text);
      const counted = counter.countTokens(text);
      expect(counted).toBeGreaterThanOrEqual(whole);
      expect(counted / whole).toBeLessThan(1.01);
    }
  });

  it("never counts fewer tokens than the whole text has, whatever its shape", () => {
    const counts = Object.entries(SAMPLES).map(([name, text]) => {
      const whole = encodeWhole(text);
      return { name, whole, counted: counter.countTokens(text) };
    });
    expect(counts.filter((c) => c.counted < c.whole)).toEqual([]);
    // A cut inside a run without spaces (every 48 bytes) is counted one token more.
    expect(counts.filter((c) => c.counted > c.whole * 1.2)).toEqual([]);
  });

  it("stops past the limit", () => {
    const text = hostileText(CJK, 60_000);
    const counted = counter.countTokens(text, 100);
    expect(counted).toBeGreaterThan(100);
    // One piece (16 characters) past it at most.
    expect(counted).toBeLessThan(150);
  });

  it("reads special tokens as text, as OpenAI's API does", () => {
    expect(counter.countTokens("<|endoftext|>")).toBe(encodeWhole("<|endoftext|>"));
    expect(counter.countTokens("<|endoftext|>")).toBeGreaterThan(1);
  });

  it("takes linear time on CJK, a × n, base64-like and mixed text up to 60,000 characters", async () => {
    // Repeats of a fragment are encoded once; the random CJK text has no repeats.
    const options = { fragments: [CJK, randomCjk(60_000), "a", BASE64], runs: [], length: 15_000 };
    await expectLinearTime((text) => counter.countTokens(text), options);
    await expectLinearTime((text) => counter.truncateToTokens(text, 8_191), options);
  }, 180_000);

  it("has a bar that catches encoding a run whole, which is quadratic", async () => {
    const growth = await measureGrowth((text) => reference.encode(text, [], []), {
      fragments: [CJK],
      runs: [],
      length: 256,
    });
    // Quadratic is 16 at 4n, linear 4: a bar of 8 tells them apart on a busy machine too.
    expect(growth[0]!.ratio).toBeGreaterThan(8);
  }, 60_000);
});

describe("truncating to a number of tokens", () => {
  it("returns the longest head within the limit, never over it when encoded whole", () => {
    const problems: string[] = [];
    for (const [name, text] of Object.entries(SAMPLES)) {
      for (const maxTokens of [1, 7, 50, 120, 300]) {
        const head = counter.truncateToTokens(text, maxTokens);
        const whole = encodeWhole(head);
        if (!text.startsWith(head)) problems.push(`${name} at ${maxTokens}: not a head`);
        if (whole > maxTokens) problems.push(`${name} at ${maxTokens}: ${whole} tokens`);
        // Cut between segments (a word, or 48 bytes of a run without spaces): the room left is
        // less than one segment.
        if (head.length < text.length && whole < maxTokens - 49)
          problems.push(`${name} at ${maxTokens}: only ${whole} tokens`);
        const last = head.charCodeAt(head.length - 1);
        const next = text.charCodeAt(head.length);
        if (last >= 0xd800 && last < 0xdc00 && next >= 0xdc00 && next < 0xe000)
          problems.push(`${name} at ${maxTokens}: cut inside a surrogate pair`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("returns a text that fits as it is, and cuts between words", () => {
    const text = "Saving a file crashes the editor on Windows.";
    expect(counter.truncateToTokens(text, 10)).toBe(text);
    // Within its UTF-8 length, nothing is encoded.
    expect(counter.truncateToTokens(text, Buffer.byteLength(text))).toBe(text);
    expect(counter.truncateToTokens(text, 4)).toBe("Saving a file crashes");
    expect(counter.truncateToTokens(text, 0)).toBe("");
  });

  it("cuts the 60,000 characters of a CJK issue to 8,191 tokens", () => {
    const text = hostileText(CJK, 60_000);
    const head = counter.truncateToTokens(text, 8_191);
    expect(text.startsWith(head)).toBe(true);
    expect(counter.countTokens(head)).toBeLessThanOrEqual(8_191);
    expect(counter.countTokens(head)).toBeGreaterThan(8_100);
  });
});

describe("the UTF-8 bound, for callers given no counter", () => {
  it("counts bytes, never fewer than the tokens, and cuts between characters", () => {
    for (const text of Object.values(SAMPLES)) {
      expect(UTF8_TOKEN_BOUND.countTokens(text)).toBeGreaterThanOrEqual(encodeWhole(text));
    }
    expect(UTF8_TOKEN_BOUND.truncateToTokens("héllo", 3)).toBe("hé");
    expect(UTF8_TOKEN_BOUND.truncateToTokens("a😀b", 4)).toBe("a");
    expect(UTF8_TOKEN_BOUND.truncateToTokens("a😀b", 5)).toBe("a😀");
    expect(UTF8_TOKEN_BOUND.truncateToTokens("abc", 3)).toBe("abc");
  });

  it("takes linear time", async () => {
    await expectLinearTime((text) => UTF8_TOKEN_BOUND.truncateToTokens(text, 30_000));
  }, 120_000);
});
