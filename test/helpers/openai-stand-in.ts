import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createTokenCounter, type TokenCounter } from "../../src/agent/count-tokens.js";
import { createLocalEmbedder } from "../../src/memory/local-embedder.js";

/**
 * A local OpenAI-compatible chat completions server, for testing the real `ChatOpenAI` over HTTP.
 * It answers `POST /v1/chat/completions` from a script, in order, and records every request body.
 */
export type ScriptedReply =
  // `finishReason: "length"`: the server cut the answer at the request's max_tokens.
  | { content: string; finishReason?: string }
  | { toolCalls: Array<{ name: string; args: Record<string, unknown> }> }
  | { status: number; headers?: Record<string, string>; body?: unknown }
  | ((
      request: ChatRequest,
    ) =>
      { content: string } | { toolCalls: Array<{ name: string; args: Record<string, unknown> }> });

export interface ChatRequest {
  model: string;
  messages: Array<{
    role: string;
    content: string | null | Array<{ type: string; text?: string }>;
    tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
    tool_call_id?: string;
  }>;
  tools?: Array<{
    type: string;
    function: { name: string; description: string; parameters: unknown };
  }>;
  tool_choice?: unknown;
  max_tokens?: number;
  stream?: boolean;
}

export interface EmbeddingRequest {
  model: string;
  input: string[] | string;
  dimensions?: number;
  encoding_format?: string;
}

const localEmbedder = createLocalEmbedder();

/**
 * Embeddings that mean something: the local hashing embedder's vectors, padded with zeros to the
 * requested size (which keeps their cosines).
 */
async function embed(request: EmbeddingRequest) {
  const inputs = Array.isArray(request.input) ? request.input : [request.input];
  const vectors = await localEmbedder.embed(inputs);
  const size = request.dimensions ?? 1536;
  return {
    object: "list",
    model: request.model,
    data: vectors.map((vector, index) => {
      const padded = new Array<number>(size).fill(0);
      vector.forEach((value, i) => (padded[i] = value));
      // The OpenAI SDK asks for base64 (little-endian float32) unless told otherwise.
      const embedding =
        request.encoding_format === "base64"
          ? Buffer.from(Float32Array.from(padded).buffer).toString("base64")
          : padded;
      return { object: "embedding", index, embedding };
    }),
    usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
  };
}

/** The input limit of text-embedding-3-* as Talos configures it (TALOS_EMBEDDING_MAX_TOKENS). */
export const MAX_EMBEDDING_TOKENS = 8_191;

/**
 * OpenAI's answer to an embeddings input over the model's limit: 400, and the whole batch fails.
 * `requested` is where the count stopped, past the limit, not always the input's whole count.
 */
function tooLong(requested: number) {
  return {
    error: {
      message: `This model's maximum context length is ${MAX_EMBEDDING_TOKENS + 1} tokens, however you requested ${requested} tokens (${requested} in your prompt; 0 for the completion). Please reduce your prompt; or completion length.`,
      type: "invalid_request_error",
      param: null,
      code: null,
    },
  };
}

/** The first input's token count over the limit, counted with cl100k and stopped there. */
function findTooLong(request: EmbeddingRequest, counter: TokenCounter): number | undefined {
  const inputs = Array.isArray(request.input) ? request.input : [request.input];
  for (const input of inputs) {
    // No token is shorter than a byte: short inputs need no encoder.
    if (Buffer.byteLength(input, "utf8") <= MAX_EMBEDDING_TOKENS) continue;
    const tokens = counter.countTokens(input, MAX_EMBEDDING_TOKENS);
    if (tokens > MAX_EMBEDDING_TOKENS) return tokens;
  }
  return undefined;
}

export interface OpenAIStandIn {
  /** The value for OPENAI_BASE_URL. */
  baseUrl: string;
  requests: ChatRequest[];
  /** Requests to /embeddings that were answered. */
  embeddingRequests: EmbeddingRequest[];
  /** Requests to /embeddings refused with OpenAI's 400 for an input over the token limit. */
  rejectedEmbeddingRequests: EmbeddingRequest[];
  /** When each request arrived (ms since the epoch). */
  arrivals: number[];
  /** Authorization headers received, to check the key was sent (and only here). */
  authorizations: string[];
  script(...replies: ScriptedReply[]): void;
  /** How to answer once the script is used up (by default, a fixed text). */
  fallback(reply: ScriptedReply): void;
  /**
   * Holds chat completions (or embeddings) unanswered until `release()`: the model is still
   * answering while a test stops or kills the server that asked.
   */
  hold(what?: "chat" | "embeddings"): void;
  /** Stops holding, and answers the held requests whose client is still connected. */
  release(): void;
  /** Embedding requests that arrived so far, held ones included. */
  embeddingArrivals(): number;
  /** Chat completions that arrived so far, held ones included (`requests` has answered ones). */
  chatArrivals(): number;
  /** Resolves once `count` chat completions have arrived in all, held ones included. */
  waitForChat(count: number): Promise<void>;
  /** A slow model: each chat completion is answered this many milliseconds after it arrives. */
  latency(ms: number | (() => number)): void;
  close(): Promise<void>;
}

export async function startOpenAIStandIn(): Promise<OpenAIStandIn> {
  const requests: ChatRequest[] = [];
  const arrivals: number[] = [];
  const authorizations: string[] = [];
  const queue: ScriptedReply[] = [];
  const embeddingRequests: EmbeddingRequest[] = [];
  const rejectedEmbeddingRequests: EmbeddingRequest[] = [];
  const counter = createTokenCounter();
  let calls = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    let text = "";
    req.on("data", (chunk: Buffer) => (text += chunk.toString()));
    req.on("end", () => {
      if (req.method === "POST" && req.url?.endsWith("/embeddings")) {
        const request = JSON.parse(text) as EmbeddingRequest;
        const requested = findTooLong(request, counter);
        if (requested !== undefined) {
          rejectedEmbeddingRequests.push(request);
          res
            .writeHead(400, { "content-type": "application/json" })
            .end(JSON.stringify(tooLong(requested)));
          return;
        }
        void embed(request).then((body) => {
          embeddingRequests.push(JSON.parse(text) as EmbeddingRequest);
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
        });
        return;
      }
      if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) {
        res
          .writeHead(404, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { message: "not found" } }));
        return;
      }
      const request = JSON.parse(text) as ChatRequest;
      requests.push(request);
      arrivals.push(Date.now());
      authorizations.push(String(req.headers.authorization));
      let reply = queue.shift() ??
        fallbackReply ?? { content: "(the stand-in has no more scripted replies)" };
      if (typeof reply === "function") reply = reply(request);
      if ("status" in reply) {
        res
          .writeHead(reply.status, { "content-type": "application/json", ...reply.headers })
          .end(
            JSON.stringify(
              reply.body ?? { error: { message: "Rate limit reached", type: "requests" } },
            ),
          );
        return;
      }
      calls++;
      const message =
        "content" in reply
          ? { role: "assistant", content: reply.content }
          : {
              role: "assistant",
              content: null,
              tool_calls: reply.toolCalls.map((call, i) => ({
                id: `call_${calls}_${i}`,
                type: "function",
                function: { name: call.name, arguments: JSON.stringify(call.args) },
              })),
            };
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          id: `chatcmpl-${calls}`,
          object: "chat.completion",
          created: 1_790_000_000,
          model: request.model,
          choices: [
            {
              index: 0,
              message,
              finish_reason: "content" in reply ? (reply.finishReason ?? "stop") : "tool_calls",
            },
          ],
          usage: { prompt_tokens: 100 + calls, completion_tokens: 20, total_tokens: 120 + calls },
        }),
      );
    });
  };

  // Chat completions held by `hold()` or slowed by `latency()` wait here before `handle` reads
  // them. One whose client is gone by then (killed) is dropped without using up the script.
  let fallbackReply: ScriptedReply | undefined;
  let holding = false;
  let holdingEmbeddings = false;
  let embeddingCount = 0;
  let held: Array<() => void> = [];
  let delay: () => number = () => 0;
  let chatCount = 0;
  let chatWaiters: Array<{ count: number; resolve: () => void }> = [];
  const server: Server = createServer((req, res) => {
    if (req.method === "POST" && req.url?.endsWith("/embeddings")) {
      embeddingCount++;
      req.on("error", () => undefined);
      if (!holdingEmbeddings) return handle(req, res);
      // As held completions: one whose client is gone by then (killed) is dropped.
      return held.push(() => {
        if (!req.socket.destroyed) handle(req, res);
      });
    }
    if (req.method !== "POST" || !req.url?.endsWith("/chat/completions")) return handle(req, res);
    chatCount++;
    chatWaiters = chatWaiters.filter((waiter) => {
      if (waiter.count > chatCount) return true;
      waiter.resolve();
      return false;
    });
    // A killed client resets the connection; that is expected here, not an error.
    req.on("error", () => undefined);
    const answer = () => {
      if (!req.socket.destroyed) handle(req, res);
    };
    const ms = delay();
    if (holding) held.push(answer);
    else if (ms > 0) setTimeout(answer, ms);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    embeddingRequests,
    rejectedEmbeddingRequests,
    arrivals,
    authorizations,
    script: (...replies) => queue.push(...replies),
    fallback: (reply) => (fallbackReply = reply),
    hold: (what = "chat") => {
      if (what === "chat") holding = true;
      else holdingEmbeddings = true;
    },
    release: () => {
      holding = false;
      holdingEmbeddings = false;
      const answers = held;
      held = [];
      for (const answer of answers) answer();
    },
    chatArrivals: () => chatCount,
    embeddingArrivals: () => embeddingCount,
    waitForChat: (count) =>
      count <= chatCount
        ? Promise.resolve()
        : new Promise((resolve) => chatWaiters.push({ count, resolve })),
    latency: (ms) => (delay = typeof ms === "number" ? () => ms : ms),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
