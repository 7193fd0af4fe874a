import { afterEach, describe, expect, it, vi } from "vitest";
import yaml from "yaml";
import {
  createConfigMemo,
  MAX_CONFIG_CHARS,
  MAX_CONFIG_DEPTH,
} from "../../src/github/config-memo-plugin.js";
import { loadRepoConfig } from "../../src/github/load-repo-config.js";
import { restrictiveConfig } from "../../src/parse-repo-config.js";
import { openConfigContext } from "../helpers/config-context.js";

const FILE = "/contents/.github%2Ftalos.yml";
const RAW = { "content-type": "application/vnd.github.raw; charset=utf-8" };
const HERE = "/repos/Codertocat/Hello-World";

describe("the config read, parsed once per version of its files", () => {
  afterEach(() => void vi.restoreAllMocks());

  it("parses the file once while it is unchanged, and gives each read its own copy", async () => {
    const { scope, context, evict } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    scope
      .get(`${HERE}${FILE}`)
      .reply(200, "triage:\n  enabled: true\n  labels: [bug]\n", RAW)
      // Fetched again (the cache emptied) with the same text: still not parsed again.
      .get(`${HERE}${FILE}`)
      .reply(200, "triage:\n  enabled: true\n  labels: [bug]\n", RAW);

    const first = await loadRepoConfig(context);
    expect(first.config.triage).toMatchObject({ enabled: true, labels: ["bug"] });
    first.config.triage.labels.push("changed by a caller");
    const second = await loadRepoConfig(context);
    evict("codertocat/hello-world");
    const third = await loadRepoConfig(context);
    expect(second.config.triage.labels).toEqual(["bug"]);
    expect(third.config).toEqual(second.config);
    expect(parse).toHaveBeenCalledTimes(1);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("reads a changed file, and a changed file it extends, as they are now", async () => {
    const { scope, context, evict } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    scope
      .get(`${HERE}${FILE}`)
      .reply(200, "_extends: .github\nask:\n  enabled: false\n", RAW)
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(200, "triage:\n  enabled: true\n", RAW)
      // The repository's own file changes.
      .get(`${HERE}${FILE}`)
      .reply(200, "_extends: .github\nask:\n  enabled: true\n", RAW)
      // Then only the file it extends.
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(200, "triage:\n  enabled: false\n", RAW);

    const before = await loadRepoConfig(context);
    expect(before.config.ask.enabled).toBe(false);
    expect(before.config.triage.enabled).toBe(true);

    evict("codertocat/hello-world");
    const edited = await loadRepoConfig(context);
    expect(edited.config.ask.enabled).toBe(true);
    expect(edited.config.triage.enabled).toBe(true);

    evict("codertocat/.github");
    const inherited = await loadRepoConfig(context);
    expect(inherited.config.ask.enabled).toBe(true);
    expect(inherited.config.triage.enabled).toBe(false);
    expect((await loadRepoConfig(context)).config).toEqual(inherited.config);
    // Each version of each file once: a change reads the chain again from the changed file on.
    expect(parse.mock.calls.map(([text]) => text)).toEqual([
      "_extends: .github\nask:\n  enabled: false\n",
      "triage:\n  enabled: true\n",
      "_extends: .github\nask:\n  enabled: true\n",
      "triage:\n  enabled: true\n",
      "_extends: .github\nask:\n  enabled: true\n",
      "triage:\n  enabled: false\n",
    ]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("follows the owner's .github fallback when the repository's file appears or goes", async () => {
    const { scope, context, evict } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    scope
      .get(`${HERE}${FILE}`)
      .reply(404, { message: "Not Found" })
      .get(`/repos/Codertocat/.github${FILE}`)
      .reply(200, "ask:\n  enabled: false\n", RAW)
      .get(`${HERE}${FILE}`)
      .reply(200, "ask:\n  enabled: true\n", RAW);

    expect((await loadRepoConfig(context)).config.ask.enabled).toBe(false);
    expect((await loadRepoConfig(context)).config.ask.enabled).toBe(false);
    evict("codertocat/hello-world");
    expect((await loadRepoConfig(context)).config.ask.enabled).toBe(true);
    expect(parse.mock.calls.map(([text]) => text)).toEqual([
      "ask:\n  enabled: false\n",
      "ask:\n  enabled: true\n",
    ]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("refuses unparsed a file longer than it reads, giving the most restrictive settings", async () => {
    const { scope, context } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    // Keys whose parse time grows faster than the file: anyone who installs the app writes it.
    let text = "ask:\n  enabled: true\n";
    for (let i = 0; text.length <= MAX_CONFIG_CHARS; i++) text += `key${i}: ${i}\n`;
    scope.get(`${HERE}${FILE}`).reply(200, text, RAW);

    const loaded = await loadRepoConfig(context);
    expect(parse).not.toHaveBeenCalled();
    expect(loaded.config).toEqual(restrictiveConfig());
    expect(loaded.errors).toEqual([
      `.github/talos.yml: is ${text.length} characters long (or a file it extends is), over the ${MAX_CONFIG_CHARS} Talos reads; using the most restrictive settings`,
    ]);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it.each([
    ["flow sequences", `x: ${"[".repeat(1_000)}${"]".repeat(1_000)}\n`, 1_001],
    ["flow mappings", `x: ${"{a: ".repeat(100)}1${"}".repeat(100)}\n`, 101],
    ["a chain of block sequences", `x:\n  ${"- ".repeat(1_000)}y\n`, 1_002],
    [
      "indented mappings",
      Array.from({ length: 70 }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n") + " v\n",
      70,
    ],
  ])(
    "refuses unparsed a file nested deeper than it reads (%s), giving the most restrictive settings",
    async (_, text, depth) => {
      // The parser recurses per level: 2 KB of `[` overflowed its stack, and a few such parses in
      // a row aborted the process (V8's "RegExpCompiler Allocation failed"; found by a review).
      const { scope, context } = await openConfigContext();
      const parse = vi.spyOn(yaml, "parse");
      scope.get(`${HERE}${FILE}`).reply(200, text, RAW);

      const loaded = await loadRepoConfig(context);
      expect(parse).not.toHaveBeenCalled();
      expect(loaded.config).toEqual(restrictiveConfig());
      expect(loaded.errors).toEqual([
        `.github/talos.yml: nests ${depth} levels deep (or a file it extends does), over the ${MAX_CONFIG_DEPTH} Talos reads; using the most restrictive settings`,
      ]);
      expect(scope.pendingMocks()).toEqual([]);
    },
  );

  it("refuses an _extends chain past the files it reads, fetching no more, once while unchanged", async () => {
    // Each file is within the bounds, but Probot's plugin follows `_extends` until a file has
    // none: a 40-file chain had all 40 fetched and parsed at every event (found by a review).
    const { scope, context } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    const file = (i: number) => (i === 0 ? ".github/talos.yml" : `.github/c${i}.yml`);
    const text = (i: number) => `_extends: Hello-World:${file(i + 1)}\nask:\n  enabled: true\n`;
    // Only the files it reads are mocked: a request for the next would find no mock and fail.
    for (let i = 0; i < 5; i++)
      scope.get(`${HERE}/contents/${encodeURIComponent(file(i))}`).reply(200, text(i), RAW);

    const first = await loadRepoConfig(context);
    expect(first.config).toEqual(restrictiveConfig());
    expect(first.errors).toEqual([
      ".github/talos.yml: its `_extends` chain goes past the 5 files Talos reads (one found missing counted), to `Codertocat/Hello-World:.github/c5.yml`; using the most restrictive settings",
    ]);
    // Read again (the files from the cache, unchanged): refused without parsing them again.
    expect(await loadRepoConfig(context)).toEqual(first);
    expect(parse.mock.calls.map(([text]) => text)).toEqual(
      Array.from({ length: 5 }, (_, i) => text(i)),
    );
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("reads an _extends chain as long as it reads, the missing file and fallback counted", async () => {
    const { scope, context } = await openConfigContext();
    const OWNER = "/repos/Codertocat/.github/contents/";
    scope
      .get(`${HERE}${FILE}`)
      .reply(404, { message: "Not Found" })
      .get(`${OWNER}.github%2Ftalos.yml`)
      .reply(200, "_extends: .github:.github/c1.yml\nask:\n  enabled: true\n", RAW)
      .get(`${OWNER}.github%2Fc1.yml`)
      .reply(200, "_extends: .github:.github/c2.yml\ntriage:\n  enabled: true\n", RAW)
      .get(`${OWNER}.github%2Fc2.yml`)
      .reply(200, "_extends: .github:.github/c3.yml\ntriage:\n  labels: [bug]\n", RAW)
      .get(`${OWNER}.github%2Fc3.yml`)
      .reply(200, "ask:\n  enabled: false\nsummarize:\n  enabled: false\n", RAW);

    const loaded = await loadRepoConfig(context);
    expect(loaded.errors).toEqual([]);
    expect(loaded.config.ask.enabled).toBe(true);
    expect(loaded.config.triage).toMatchObject({ enabled: true, labels: ["bug"] });
    expect(loaded.config.summarize.enabled).toBe(false);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("refuses unparsed the file that takes a chain past the characters it reads, once while unchanged", async () => {
    const { scope, context } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    // Each file within MAX_CONFIG_CHARS; the comment keeps the parses the test does cheap.
    const filler = `# ${"x".repeat(MAX_CONFIG_CHARS - 100)}\n`;
    const base = `_extends: Hello-World:.github/base.yml\n${filler}`;
    const middle = `_extends: Hello-World:.github/last.yml\n${filler}`;
    const last = `ask:\n  enabled: true\n${filler}`;
    scope
      .get(`${HERE}${FILE}`)
      .reply(200, base, RAW)
      .get(`${HERE}/contents/.github%2Fbase.yml`)
      .reply(200, middle, RAW)
      .get(`${HERE}/contents/.github%2Flast.yml`)
      .reply(200, last, RAW);

    const first = await loadRepoConfig(context);
    const chars = base.length + middle.length + last.length;
    // Two files near the longest are read; the third takes them past twice that.
    expect(chars).toBeGreaterThan(2 * MAX_CONFIG_CHARS);
    expect(first.config).toEqual(restrictiveConfig());
    expect(first.errors).toEqual([
      `.github/talos.yml: with the files it extends, is at least ${chars} characters long, over the 131072 Talos reads across an \`_extends\` chain; using the most restrictive settings`,
    ]);
    expect(await loadRepoConfig(context)).toEqual(first);
    // The first two, once; not the third, whose characters pass the bound.
    expect(parse).toHaveBeenCalledTimes(2);
    expect(parse.mock.calls.map(([text]) => text)).not.toContain(last);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("reads a file nested as deep as it reads", async () => {
    const { scope, context } = await openConfigContext();
    const nested = `${"[".repeat(MAX_CONFIG_DEPTH - 3)}bug${"]".repeat(MAX_CONFIG_DEPTH - 3)}`;
    scope
      .get(`${HERE}${FILE}`)
      .reply(200, `triage:\n  enabled: true\n  labels: [bug]\nx: ${nested}\n`, RAW);
    const loaded = await loadRepoConfig(context);
    expect(loaded.errors.join("\n")).not.toContain("levels deep");
    expect(loaded.config.triage).toMatchObject({ enabled: true, labels: ["bug"] });
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("parses a file that is not YAML once while it is unchanged, restrictive each time", async () => {
    const { scope, context } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    scope.get(`${HERE}${FILE}`).reply(200, "ask: [unclosed\n", RAW);

    const first = await loadRepoConfig(context);
    const second = await loadRepoConfig(context);
    expect(first.config).toEqual(restrictiveConfig());
    expect(second).toEqual(first);
    expect(first.errors[0]).toContain("cannot be read as YAML");
    expect(parse).toHaveBeenCalledTimes(1);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("leaves a read with defaults (Probot's context.config) to the plugin: parsed each time", async () => {
    const { scope, octokit } = await openConfigContext();
    const parse = vi.spyOn(yaml, "parse");
    scope.get(`${HERE}${FILE}`).reply(200, "ask:\n  enabled: true\n", RAW);
    const options = { owner: "Codertocat", repo: "Hello-World", path: ".github/talos.yml" };
    for (let i = 0; i < 2; i++)
      expect(await octokit.config.get({ ...options, defaults: { more: 1 } })).toMatchObject({
        config: { ask: { enabled: true }, more: 1 },
      });
    expect(parse).toHaveBeenCalledTimes(2);
    expect(scope.pendingMocks()).toEqual([]);
  });

  it("keeps reads within its bytes: one of a file bigger than an eighth of them is not kept", () => {
    const memo = createConfigMemo(80_000);
    const read = (text: string) => ({
      files: [{ endpoint: { method: "GET", url: "/repos/o/r/contents/x" }, text }],
      result: { config: {}, files: [] },
    });
    memo.set("big", read("x".repeat(2_600)));
    memo.set("small", read("x".repeat(2_400)));
    expect([memo.has("big"), memo.has("small")]).toEqual([false, true]);
    for (let i = 0; i < 20; i++) memo.set(`more-${i}`, read("x".repeat(2_400)));
    // 4 bytes a character: at most eight of 9,600 bytes in 80,000.
    expect(memo.size).toBe(8);
    expect(memo.calculatedSize).toBeLessThanOrEqual(80_000);
  });
});
