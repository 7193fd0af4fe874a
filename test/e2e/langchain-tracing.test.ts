import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import {
  askDelivery,
  buildDist,
  jobFinished,
  makeWorkDir,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import { TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";

/**
 * config.ts, disableLangChainTracing: "Talos may talk to GitHub and the configured model endpoint
 * only, so tracing is forced off, whatever the environment says." main.ts forces it off first,
 * but Probot's run() then lays `.env` over process.env (applyEnv), which switches it back on.
 */
describe("LangChain tracing stays off under npm start", () => {
  let github: GitHubStandIn;
  let llm: OpenAIStandIn;
  let langsmith: Server;
  let langsmithUrl: string;
  const langsmithRequests: string[] = [];
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    llm = await startOpenAIStandIn();
    llm.fallback({ content: "Because." });
    langsmith = createServer((req, res) => {
      langsmithRequests.push(`${req.method} ${req.url}`);
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end("{}"));
    });
    await new Promise<void>((resolve) => langsmith.listen(0, "127.0.0.1", resolve));
    langsmithUrl = `http://127.0.0.1:${(langsmith.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const server of servers) await server.kill("SIGKILL");
    await github?.close();
    await llm?.close();
    await new Promise((resolve) => langsmith?.close(resolve));
  });

  const tracing = {
    LANGSMITH_TRACING: "true",
    LANGSMITH_API_KEY: "lsv2_pt_review_0123456789abcdef",
  };

  async function askAndWait(where: "environment" | ".env", n: number) {
    langsmithRequests.length = 0;
    const cwd = makeWorkDir();
    const env = await standInServerEnv(github.host, {
      OPENAI_API_KEY: "sk-review-tracing-0123456789abcdef",
      OPENAI_BASE_URL: llm.baseUrl,
      TALOS_MODEL: "local-model",
      LOG_LEVEL: "info",
      ...(where === "environment" ? { ...tracing, LANGSMITH_ENDPOINT: langsmithUrl } : {}),
    });
    if (where === ".env")
      writeFileSync(
        join(cwd, ".env"),
        Object.entries({ ...tracing, LANGSMITH_ENDPOINT: langsmithUrl })
          .map(([k, v]) => `${k}=${v}`)
          .join("\n") + "\n",
      );
    const server = await startServerProcess(env, { cwd });
    servers.push(server);
    onTestFailed(() => console.log(server.output()));
    const delivery = askDelivery(`tracing-${where}`, 8800 + n, 40 + n);
    const res = await sendWebhook(server.url, delivery, { secret: TEST_WEBHOOK_SECRET });
    expect(res.status).toBe(200);
    await jobFinished(server, delivery.id);
    // LangSmith's client sends its batches within a second or so.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await server.kill("SIGTERM");
    return [...langsmithRequests];
  }

  it("with LANGSMITH_TRACING=true in the real environment: nothing is sent to LangSmith", async () => {
    expect(await askAndWait("environment", 1)).toEqual([]);
  }, 60_000);

  it("with LANGSMITH_TRACING=true in .env: nothing is sent to LangSmith either", async () => {
    expect(await askAndWait(".env", 2)).toEqual([]);
  }, 60_000);
});
