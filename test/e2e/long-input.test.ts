import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenCounter } from "../../src/agent/count-tokens.js";
import {
  githubScope,
  mockAppIdentity,
  mockInstallationToken,
  mockIssueNow,
  mockRepoConfig,
} from "../helpers/github-mocks.js";
import {
  MAX_EMBEDDING_TOKENS,
  startOpenAIStandIn,
  type OpenAIStandIn,
} from "../helpers/openai-stand-in.js";
import { createTestApp, type TestApp } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "/repos/Codertocat/Hello-World";
const TITLE = "保存文件时编辑器崩溃";
// Sentences of a Chinese bug report, as one would write it: no spaces, only CJK punctuation.
const SENTENCES = [
  "在视窗系统上保存文件时，编辑器会立即崩溃。",
  "错误日志显示写入缓冲区时出现空指针异常。",
  "重新安装插件之后问题仍然存在。",
  "只有在文件很大的时候才会出现这个问题。",
  "请问有没有临时的解决办法？",
];

/** `length` characters of the sentences in turn, starting from the `first`. */
function chineseReport(length: number, first = 0): string {
  const sentences = [...SENTENCES.slice(first), ...SENTENCES.slice(0, first)].join("");
  return sentences.repeat(Math.ceil(length / sentences.length)).slice(0, length);
}

function openedIssue(number: number, title: string, body: string) {
  const payload = webhookExample("issues", "opened");
  Object.assign(payload.issue, {
    number,
    title,
    body,
    html_url: `https://github.com/Codertocat/Hello-World/issues/${number}`,
    created_at: "2026-11-20T10:00:00Z",
  });
  return payload;
}

function receive(app: TestApp, payload: unknown) {
  return app.probot.receive({ id: `d-${Math.random()}`, name: "issues", payload } as never);
}

/**
 * A long issue with OpenAI's embeddings: the stand-in refuses an input over 8,191 tokens with
 * OpenAI's 400, as the 60,000 characters of a Chinese issue are (about 90,000 tokens).
 */
describe("a 60,000-character Chinese issue", () => {
  let llm: OpenAIStandIn;
  beforeAll(async () => (llm = await startOpenAIStandIn()));
  afterAll(() => llm.close());

  it("is remembered, then found by the similar-issues search of a new issue like it", async () => {
    const app = await createTestApp({
      env: { OPENAI_API_KEY: "sk-long-input-test-0123456789abcdef", OPENAI_BASE_URL: llm.baseUrl },
    });
    const scope = githubScope();
    mockInstallationToken(scope);
    mockRepoConfig(scope, { yaml: "similar:\n  enabled: true\n" });
    const first = chineseReport(60_000);
    const firstOpened = openedIssue(1, TITLE, first);
    mockIssueNow(scope, firstOpened.issue);
    await receive(app, firstOpened);
    // Nothing resembled it yet: no comment.
    expect(scope.pendingMocks()).toEqual([]);

    // #1 is named from the cache that its job's read filled.
    mockAppIdentity(scope);
    scope.get(`${REPO}/issues/2/comments`).query({ per_page: "100" }).reply(200, []);
    let posted: unknown;
    scope
      .post(`${REPO}/issues/2/comments`, (body: unknown) => Boolean((posted = body)))
      .reply(201, { id: 9001 });
    const second = chineseReport(60_000, 2);
    const secondOpened = openedIssue(2, `${TITLE}（大文件）`, second);
    mockIssueNow(scope, secondOpened.issue);
    await receive(app, secondOpened);

    expect(scope.pendingMocks()).toEqual([]);
    expect(posted).toEqual({
      body: `**Possibly related**: #1 (${TITLE}).\n\n<!-- talos:similar:2 -->`,
    });
    expect(llm.rejectedEmbeddingRequests).toEqual([]);
    // Each issue went out as its title and the head of its body, just under the limit.
    const counter = createTokenCounter();
    const inputs = llm.embeddingRequests.flatMap((request) => [request.input].flat());
    const sent = [`${TITLE}  ${first}`, `${TITLE}（大文件）  ${second}`];
    expect(sent.map((text) => inputs.some((input) => text.startsWith(input)))).toEqual([
      true,
      true,
    ]);
    for (const input of inputs) {
      const tokens = counter.countTokens(input);
      expect(tokens).toBeLessThanOrEqual(MAX_EMBEDDING_TOKENS);
      expect(tokens).toBeGreaterThan(MAX_EMBEDDING_TOKENS - 100);
    }
  }, 60_000);
});
