import nock from "nock";
import { afterEach, describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import { createOpenAIEmbedder } from "../../src/memory/openai-embedder.js";

// An OpenAI-compatible server's embeddings answer: each item carries the `index` of the input it
// embeds (https://platform.openai.com/docs/api-reference/embeddings/object). Nothing in the API
// promises the items come in input order, nor that a broken server returns as many as it was sent.
const BASE = "http://embeddings.batch.test/v1";
// One counter for the file: each builds a 50 MB encoder.
const counter = createTokenCounter();

function embedder() {
  return createOpenAIEmbedder({
    apiKey: "sk-test",
    baseURL: BASE,
    model: "some-embedder",
    dimension: 3,
    maxTokens: 8_000,
    tokenCounter: counter,
    timeoutMs: 5_000,
    maxRetries: 0,
  });
}

// A distinct vector per input text, so that a pairing can be checked.
const VECTORS: Record<string, number[]> = {
  alpha: [1, 0, 0],
  beta: [0, 1, 0],
  gamma: [0, 0, 1],
};

function answer(items: Array<{ text: string; index: number }>) {
  return {
    object: "list",
    model: "some-embedder",
    data: items.map(({ text, index }) => ({
      object: "embedding",
      index,
      // The OpenAI SDK asks for base64 (little-endian float32) and decodes it.
      embedding: Buffer.from(Float32Array.from(VECTORS[text]!).buffer).toString("base64"),
    })),
    usage: { prompt_tokens: 3, total_tokens: 3 },
  };
}

function serverAnswers(items: Array<{ text: string; index: number }>) {
  nock(BASE).post("/embeddings").reply(200, answer(items));
}

afterEach(() => {
  expect(nock.pendingMocks()).toEqual([]);
});

describe("the OpenAI embedder pairs each text with its own vector", () => {
  it("uses each item's `index`, not the order of the items, when the server answers out of order", async () => {
    serverAnswers([
      { text: "gamma", index: 2 },
      { text: "alpha", index: 0 },
      { text: "beta", index: 1 },
    ]);

    const vectors = await embedder().embed(["alpha", "beta", "gamma"]);

    expect(vectors.map((v) => Array.from(v))).toEqual([VECTORS.alpha, VECTORS.beta, VECTORS.gamma]);
  });

  it("fails with a clear error when the server returns fewer vectors than texts", async () => {
    serverAnswers([
      { text: "alpha", index: 0 },
      { text: "beta", index: 1 },
    ]);

    // Not a TypeError from reading the missing item ("Cannot read properties of undefined").
    await expect(embedder().embed(["alpha", "beta", "gamma"])).rejects.toThrow(
      "the embedding model some-embedder returned 2 vectors for 3 texts (indexes: 0, 1)",
    );
  });

  it("fails when the server returns more vectors than texts, rather than dropping the extra", async () => {
    serverAnswers([
      { text: "gamma", index: 2 },
      { text: "alpha", index: 0 },
      { text: "beta", index: 1 },
    ]);

    await expect(embedder().embed(["alpha", "beta"])).rejects.toThrow(
      "the embedding model some-embedder returned 3 vectors for 2 texts (indexes: 2, 0, 1)",
    );
  });

  it("fails when an index is repeated or out of range, though the count is right", async () => {
    serverAnswers([
      { text: "alpha", index: 0 },
      { text: "beta", index: 0 },
    ]);
    await expect(embedder().embed(["alpha", "beta"])).rejects.toThrow(
      "returned 2 vectors for 2 texts (indexes: 0, 0)",
    );

    serverAnswers([
      { text: "alpha", index: 0 },
      { text: "beta", index: 2 },
    ]);
    await expect(embedder().embed(["alpha", "beta"])).rejects.toThrow(
      "returned 2 vectors for 2 texts (indexes: 0, 2)",
    );
  });
});
