import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGitHubStandIn, type GitHubStandIn } from "../helpers/github-stand-in.js";
import { startOpenAIStandIn, type OpenAIStandIn } from "../helpers/openai-stand-in.js";
import {
  buildDist,
  makeWorkDir,
  ROOT,
  sendWebhook,
  standInServerEnv,
  startServerProcess,
  type ServerProcess,
} from "../helpers/server-process.js";
import { loadFixture, makeDataDir, TEST_WEBHOOK_SECRET } from "../helpers/test-app.js";
import { createTestRegistry } from "../helpers/test-memory.js";
import { webhookExample } from "../helpers/webhook-examples.js";

const REPO = "Codertocat/Hello-World";

/** `npx talos …` as a separate process, with only PATH from this environment: its stdout. */
async function talosCli(args: string[], { cwd }: { cwd: string }): Promise<string> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [join(ROOT, "bin/talos.js"), ...args],
    { cwd, env: { PATH: process.env.PATH ?? "" } },
  );
  return stdout;
}
const TOPICS = [
  "Crash when saving a file on Windows",
  "Dark mode for the settings page",
  "Typo in the installation guide",
  "Support for Python 3.13 wheels",
  "Login button does nothing on Safari",
  "Memory leak in the image cache",
  "Add a Spanish translation",
  "Slow startup with many plugins",
  "Keyboard shortcut to duplicate lines",
  "Broken link in the changelog",
  "Export reports as CSV",
  "Timezone shown wrong in notifications",
  "Docker image is missing curl",
  "Rate limit errors from the public API",
  "Scrollbar flickers when resizing",
  "Allow custom fonts in themes",
  "Tests fail on ARM runners",
  "Password reset email never arrives",
  "Offline mode for mobile",
  "Deprecated warning from the yaml parser",
];

/** The payload of issue `number` opened; with `github`, the issue is on GitHub too. */
function opened(number: number, title: string, installation = 2, github?: GitHubStandIn) {
  const payload = webhookExample("issues", "opened", installation);
  const body = `${title}. Steps to reproduce are in the attached log.`;
  Object.assign(payload.issue, {
    number,
    title,
    body,
    html_url: `https://github.com/${REPO}/issues/${number}`,
  });
  github?.issues.set(`${REPO}#${number}`, {
    number,
    title,
    body,
    state: "open",
    user: { login: "octocat" },
    labels: [],
  });
  return payload;
}

/**
 * Memory as a maintainer meets it: `node dist/main.js` with OpenAI-compatible embeddings, killed
 * without warning and started again.
 */
describe("memory in the started server", () => {
  let github: GitHubStandIn;
  let llm: OpenAIStandIn;
  let server: ServerProcess | undefined;
  const dataDir = makeDataDir();
  const cwd = makeWorkDir();
  const signed = { secret: TEST_WEBHOOK_SECRET };

  async function start() {
    return startServerProcess(
      await standInServerEnv(github.host, {
        TALOS_DATA_DIR: dataDir,
        OPENAI_API_KEY: "sk-e2e-memory-key-0123456789abcdef",
        OPENAI_BASE_URL: llm.baseUrl,
        // Nothing reaches the index files before the kill: the log alone must carry it all.
        TALOS_MEMORY_BATCH_SIZE: "1000",
        TALOS_MEMORY_FLUSH_MS: "600000",
      }),
      { cwd },
    );
  }

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    llm = await startOpenAIStandIn();
    github.setFile(REPO, ".github/talos.yml", "similar:\n  enabled: true\n");
    server = await start();
  });

  afterAll(async () => {
    if (process.env.DEBUG_E2E) console.log(server?.output());
    await server?.kill();
    await github?.close();
    await llm?.close();
  });

  it("remembers 20 acknowledged issues through a SIGKILL, then names the one a new issue resembles", async () => {
    for (const [i, title] of TOPICS.entries()) {
      const res = await sendWebhook(
        server!.url,
        { id: `e2e-memory-${i}`, event: "issues", payload: opened(i + 1, title, 2, github) },
        signed,
      );
      expect(res.status).toBe(200);
    }
    // Another installation has a repository of the same name, with the closest issue of all.
    const other = await sendWebhook(
      server!.url,
      {
        id: "e2e-memory-other",
        event: "issues",
        payload: opened(40, "Crash when saving a file on Windows 11", 3, github),
      },
      signed,
    );
    expect(other.status).toBe(200);
    // Deliveries run after they are acknowledged: the kill comes once all 21 jobs are done (a
    // job left in the journal would run again after the restart).
    await eventually(
      async () => jobsDone(await metricsOf(server!)) === 21,
      "the 21 deliveries to be handled",
    );
    expect(await metricsOf(server!)).toMatch(/^talos_memory_records 21$/m);
    // None of these resembled another: no comment yet.
    expect([...github.comments.keys()]).toEqual([]);

    await server!.kill("SIGKILL");
    server = await start();
    // Both memories are opened ahead of their first use, their logs replayed into them.
    await eventually(
      async () => /^talos_memory_records 21$/m.test(await metricsOf(server!)),
      "both memories to be opened at start",
    );
    await eventually(
      () =>
        server!.output().includes('"opened":2,"msg":"memories opened ahead of their first use"'),
      "the warm-up to say so",
    );

    const res = await sendWebhook(
      server.url,
      {
        id: "e2e-memory-new",
        event: "issues",
        payload: opened(21, "Crash when saving a file on Windows 11", 2, github),
      },
      signed,
    );
    expect(res.status).toBe(200);
    await eventually(() => github.comments.has(`${REPO}#21`), "the comment on #21");
    await eventually(
      async () => /^talos_memory_add_duration_seconds_count 1$/m.test(await metricsOf(server!)),
      "#21 to be remembered",
    );
    const comments = github.comments.get(`${REPO}#21`) ?? [];
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toBe(
      "**Possibly related**: #1 (Crash when saving a file on Windows).\n\n<!-- talos:similar:21 -->",
    );
    expect([...github.comments.keys()]).toEqual([`${REPO}#21`]);
    expect(llm.embeddingRequests.length).toBeGreaterThan(0);

    const metrics = await metricsOf(server);
    // The open memories after the restart: the 20 and the other installation's 1, replayed from
    // their logs, and the new issue, which waits in the log for the next batch.
    expect(metrics).toMatch(/^talos_memory_records 22$/m);
    expect(metrics).toMatch(/^talos_memory_pending_records 1$/m);
    expect(metrics).toMatch(/^talos_memory_add_duration_seconds_count 1$/m);
    expect(metrics).toContain("talos_memory_flushes_total");
    expect(metrics).toContain("talos_memory_pending_records");

    // The memory commands beside the running server: it answers them from the memory it has
    // open, the pending record included, and embeds the query with its own embedder (the CLI's
    // environment has no key). Async: the model's stand-in runs in this process.
    const cli = (...args: string[]) =>
      talosCli([...args, "--data-dir", dataDir, "--json"], { cwd });
    const stats = JSON.parse(await cli("memory", "stats")) as {
      namespaces: Array<{ installation: number; records: number; pending: number }>;
    };
    expect(stats.namespaces).toMatchObject([
      { installation: 2, records: 21, pending: 1 },
      { installation: 3, records: 1 },
    ]);
    const found = JSON.parse(
      await cli("memory", "search", "crash saving a file on windows", "--installation", "2"),
    ) as { hits: Array<{ number: number }> };
    expect(
      found.hits
        .map((hit) => hit.number)
        .slice(0, 2)
        .sort(),
    ).toEqual([1, 21]);

    // SIGTERM flushes: the index files then hold everything, and the log nothing.
    await server.kill("SIGTERM");
    server = undefined;
    const namespace = join(dataDir, "memory", "2", "186853002");
    const logs = readdirSync(namespace).filter((name) => /^log-\d+\.bin$/.test(name));
    expect(logs.map((name) => readFileSync(join(namespace, name), "utf8"))).toEqual([""]);
    // Opened only to read: an embedder that knows the model recorded in the index, and is never
    // asked to embed.
    const memory = createTestRegistry(join(dataDir, "memory"), {
      embedder: {
        model: "text-embedding-3-small",
        dimension: 1536,
        relatedScore: 0.7,
        embed: () => Promise.reject(new Error("not used")),
      },
    });
    const mine = await memory.open({ installation: 2, repository: 186853002, name: REPO });
    const numbers = (await mine.list()).map((r) => r.number).sort((a, b) => a! - b!);
    expect(numbers).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
    const theirs = await memory.open({ installation: 3, repository: 186853002, name: REPO });
    expect((await theirs.list()).map((r) => r.number)).toEqual([40]);
    await memory.closeAll();
  });
});

async function metricsOf(server: ServerProcess): Promise<string> {
  return (await fetch(`${server.metricsUrl}/metrics`)).text();
}

/** Jobs finished, of every kind, as the metrics count them. */
function jobsDone(metrics: string): number {
  return [...metrics.matchAll(/^talos_jobs_total\{[^}]*outcome="done"[^}]*\} (\d+)$/gm)].reduce(
    (sum, match) => sum + Number(match[1]),
    0,
  );
}

/** Polls what the started server does after acknowledging a delivery; the bound ends a hung test. */
async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  boundMs = 20_000,
): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > boundMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * The reliability issue's done-when, as a maintainer meets it: a repository deleted and created
 * again under the same name starts with an empty memory, in the started server.
 */
describe("a repository deleted and created again under its name, in the started server", () => {
  let github: GitHubStandIn;
  let server: ServerProcess | undefined;
  const dataDir = makeDataDir();
  const cwd = makeWorkDir();
  const signed = { secret: TEST_WEBHOOK_SECRET };
  const OLD_ID = 186853002;
  const NEW_ID = 286853002;

  beforeAll(async () => {
    buildDist();
    github = await startGitHubStandIn();
    github.setFile(REPO, ".github/talos.yml", "similar:\n  enabled: true\n");
    // No model key: memory runs on the local embedder, as it does for a maintainer without one.
    server = await startServerProcess(
      await standInServerEnv(github.host, { TALOS_DATA_DIR: dataDir }),
      {
        cwd,
      },
    );
  });

  afterAll(async () => {
    if (process.env.DEBUG_E2E) console.log(server?.output());
    await server?.kill();
    await github?.close();
  });

  /** `issues.opened` for `number` in the repository with id `repository`. */
  function openedIn(repository: number, number: number, title: string) {
    const payload = opened(number, title, 2, github);
    payload.repository.id = repository;
    payload.repository.node_id = `R_${repository}`;
    return payload;
  }

  it("remembers nothing of the old one: no similar issue named, and only the new issue in its memory", async () => {
    for (const [i, title] of TOPICS.slice(0, 3).entries()) {
      const res = await sendWebhook(
        server!.url,
        { id: `e2e-recreated-${i}`, event: "issues", payload: openedIn(OLD_ID, i + 1, title) },
        signed,
      );
      expect(res.status).toBe(200);
    }
    await eventually(async () => jobsDone(await metricsOf(server!)) === 3, "3 issues remembered");
    const stats = async () =>
      (
        JSON.parse(
          await talosCli(["memory", "stats", "--data-dir", dataDir, "--json"], { cwd }),
        ) as {
          namespaces: Array<{
            installation: number;
            repository: number;
            records: number;
          }>;
        }
      ).namespaces.map(({ installation, repository, records }) => ({
        installation,
        repository,
        records,
      }));
    expect(await stats()).toEqual([{ installation: 2, repository: OLD_ID, records: 3 }]);

    // Deleted on GitHub: its issues are gone there, and the delivery says so.
    const deleted = loadFixture<Record<string, any>>("repository.deleted.json");
    deleted.repository = openedIn(OLD_ID, 1, TOPICS[0]!).repository;
    for (const number of [1, 2, 3]) github.issues.delete(`${REPO}#${number}`);
    const res = await sendWebhook(
      server!.url,
      { id: "e2e-recreated-deleted", event: "repository", payload: deleted },
      signed,
    );
    expect(res.status).toBe(200);
    await eventually(async () => jobsDone(await metricsOf(server!)) === 4, "the deletion");
    expect(await stats()).toEqual([]);

    // Created again under the same name: a new id. Its first issue is the old #1's twin.
    const twin = await sendWebhook(
      server!.url,
      {
        id: "e2e-recreated-new",
        event: "issues",
        payload: openedIn(NEW_ID, 1, `${TOPICS[0]} 11`),
      },
      signed,
    );
    expect(twin.status).toBe(200);
    await eventually(async () => jobsDone(await metricsOf(server!)) === 5, "the new issue");
    // Nothing of the old repository was named (the twin of its #1 would have been).
    expect([...github.comments.keys()]).toEqual([]);
    expect(await stats()).toEqual([{ installation: 2, repository: NEW_ID, records: 1 }]);
  }, 60_000);
});
