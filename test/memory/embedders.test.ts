import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { parseEnv } from "../../src/config.js";
import { withEmbeddingCache } from "../../src/memory/caching-embedder.js";
import { createEmbedder } from "../../src/memory/create-embedder.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";
import { createOpenAIEmbedder } from "../../src/memory/openai-embedder.js";
import {
  MAX_EMBEDDING_TOKENS,
  startOpenAIStandIn,
  type OpenAIStandIn,
} from "../helpers/openai-stand-in.js";
import { countingEmbedder } from "../helpers/test-memory.js";
import { expectLinearTime, hostileText } from "../helpers/hostile-input.js";

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const CJK = "保存文件时编辑器崩溃错误日志显示写入缓冲区出现空指针异常";
// One counter for the file: each builds a 50 MB encoder.
const counter = createTokenCounter();

describe("choosing the embedder", () => {
  it("uses the local one without a key, or when told to, and OpenAI's with a key", () => {
    expect(createEmbedder(parseEnv({})).model).toBe("talos-local-hash-v2");
    expect(createEmbedder(parseEnv({ OPENAI_API_KEY: "sk-x" })).model).toBe(
      "text-embedding-3-small",
    );
    expect(
      createEmbedder(parseEnv({ OPENAI_API_KEY: "sk-x", TALOS_EMBEDDING_MODEL: "local" })).model,
    ).toBe("talos-local-hash-v2");
  });
});

describe("the local embedder", () => {
  it("takes linear time on hostile text (a run of quotes once took quadratic time)", async () => {
    const embedder = createLocalEmbedder();
    await expectLinearTime((text) => embedder.embed([text]));
    await expectLinearTime((text) => embedder.embed([text]), { fragments: ["'", "''a"] });
    await expectLinearTime((text) => embedder.embed([text]), {
      fragments: [CJK, "a", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjM0NTY3ODkrLw=="],
      runs: [],
    });
  }, 120_000);

  it("is deterministic, of unit length, and finds shared words however they are inflected", async () => {
    const embedder = createLocalEmbedder();
    const [a, again, related, unrelated] = await embedder.embed([
      "The editor crashes when saving files on Windows",
      "The editor crashes when saving files on Windows",
      "Crash on save (Windows 11)",
      "Please add a dark theme to the settings page",
    ]);
    expect(Array.from(again!)).toEqual(Array.from(a!));
    expect(cosine(a!, a!)).toBeCloseTo(1, 5);
    expect(cosine(a!, related!)).toBeGreaterThan(embedder.relatedScore);
    expect(cosine(a!, unrelated!)).toBeLessThan(0.1);
  });
});

describe("the OpenAI embedder, against an OpenAI-compatible server", () => {
  let server: OpenAIStandIn;
  beforeAll(async () => (server = await startOpenAIStandIn()));
  afterAll(() => server.close());

  const options = () => ({
    apiKey: "sk-embeddings-test",
    baseURL: server.baseUrl,
    model: "text-embedding-3-small",
    dimension: 1536,
    maxTokens: MAX_EMBEDDING_TOKENS,
    tokenCounter: counter,
    timeoutMs: 5_000,
    maxRetries: 0,
  });

  it("sends many texts per request, asks for the configured size, and returns float32 vectors", async () => {
    const before = server.embeddingRequests.length;
    const texts = Array.from({ length: 300 }, (_, i) => `issue text number ${i}`);

    const vectors = await createOpenAIEmbedder(options()).embed(texts);

    const requests = server.embeddingRequests.slice(before);
    expect(requests.map((r) => (r.input as string[]).length)).toEqual([256, 44]);
    expect(requests.every((r) => r.model === "text-embedding-3-small")).toBe(true);
    expect(requests.every((r) => r.dimensions === 1536)).toBe(true);
    expect(vectors).toHaveLength(300);
    expect(vectors[0]).toBeInstanceOf(Float32Array);
    expect(vectors[0]).toHaveLength(1536);
    // The stand-in pads the local embedder's vectors: the same text gives the same vector.
    const [local] = await createLocalEmbedder().embed(["issue text number 0"]);
    expect(Array.from(vectors[0]!.slice(0, 512))).toEqual(Array.from(local!));
  });

  it("sends each text as its head within the token limit, line breaks as spaces", async () => {
    const before = server.embeddingRequests.length;
    const issue = `Crash on save\n\n${hostileText(CJK, 60_000)}`;

    const vectors = await createOpenAIEmbedder(options()).embed([issue, "line one\nline two"]);

    expect(server.rejectedEmbeddingRequests).toEqual([]);
    const requests = server.embeddingRequests.slice(before);
    expect(requests).toHaveLength(1);
    const [head, short] = requests[0]!.input as string[];
    expect(short).toBe("line one line two");
    expect(head!.startsWith("Crash on save  保存文件")).toBe(true);
    expect(issue.replace(/\n/g, " ").startsWith(head!)).toBe(true);
    const tokens = counter.countTokens(head!);
    expect(tokens).toBeLessThanOrEqual(MAX_EMBEDDING_TOKENS);
    expect(tokens).toBeGreaterThan(MAX_EMBEDDING_TOKENS - 100);
    expect(vectors).toHaveLength(2);
  });

  it("sends a lone surrogate as U+FFFD and drops U+0000, as a strict JSON server takes them", async () => {
    const before = server.embeddingRequests.length;

    await createOpenAIEmbedder(options()).embed(["a lone \ud800 half", "nul\u0000 here"]);

    const requests = server.embeddingRequests.slice(before);
    expect(requests.map((r) => r.input)).toEqual([["a lone \ufffd half", "nul here"]]);
  });

  it("is refused by the stand-in, as by OpenAI, when a text is over the limit", async () => {
    const long = hostileText(CJK, 20_000);
    const embedder = createOpenAIEmbedder({ ...options(), maxTokens: 1_000_000 });
    await expect(embedder.embed([long])).rejects.toThrow(
      /maximum context length is 8192 tokens, however you requested \d+ tokens/,
    );

    const res = await fetch(`${server.baseUrl}/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "text-embedding-3-small", input: ["short", long] }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body).toEqual({
      error: {
        message: expect.stringMatching(
          /^This model's maximum context length is 8192 tokens, however you requested (\d+) tokens \(\1 in your prompt; 0 for the completion\)\. Please reduce your prompt; or completion length\.$/,
        ),
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    });
    // Counting stopped past the limit: the number is over it, not the whole count.
    expect(Number(/requested (\d+)/.exec(body.error.message)![1])).toBeGreaterThan(
      MAX_EMBEDDING_TOKENS,
    );
  });

  it("fails loudly when the server returns another size than configured", async () => {
    // Only text-embedding-3-* can be asked for a size; this model gets the server's own 1536.
    const embedder = createOpenAIEmbedder({ ...options(), model: "nomic-embed", dimension: 768 });

    await expect(embedder.embed(["text"])).rejects.toThrow(
      "the embedding model nomic-embed returned 1536 dimensions, not the configured 768 (TALOS_EMBEDDING_DIMENSIONS)",
    );
  });
});

describe("the embedding cache", () => {
  it("never embeds the same text twice, in one batch or across calls", async () => {
    const counting = countingEmbedder();
    const embedder = withEmbeddingCache(counting.embedder);

    const first = await embedder.embed(["a crash", "dark mode", "a crash"]);
    const second = await embedder.embed(["dark mode", "a crash", "new text"]);

    expect(counting.texts).toEqual(["a crash", "dark mode", "new text"]);
    expect(Array.from(second[1]!)).toEqual(Array.from(first[0]!));
    expect(embedder.requested()).toBe(3);
  });
});
