import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTalos } from "../helpers/run-talos.js";
import { makeDataDir } from "../helpers/test-app.js";
import { webhookExample } from "../helpers/webhook-examples.js";

function talos(...argv: string[]) {
  return runTalos(argv);
}

describe("talos replay", () => {
  it("prints the planned writes for a command and sends nothing", async () => {
    // nock.disableNetConnect() is in force: a request that escaped would fail the run.
    const { code, out, err } = await talos("replay", "fixtures/issue_comment.created.help.json");
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain("Replayed issue_comment.created");
    expect(out).toContain(
      '1. POST /repos/Codertocat/Hello-World/issues/comments/492700400/reactions\n{\n  "content": "eyes"\n}',
    );
    expect(out).toContain("2. POST /repos/Codertocat/Hello-World/issues/1/comments");
    expect(out).toContain("<!-- talos:reply:492700400 -->");
    expect(out).toContain("2 planned write(s); nothing was sent to GitHub.");
  });

  it("prints one JSON object with --json", async () => {
    const { code, out } = await talos(
      "replay",
      "fixtures/issue_comment.created.config.json",
      "--json",
    );
    expect(code).toBe(0);
    const result = JSON.parse(out.trim().split("\n").at(-1) ?? "");
    expect(result.event).toBe("issue_comment.created");
    expect(result.writes.map((w: { method: string }) => w.method)).toEqual(["POST", "POST"]);
    expect(result.writes[1].body.body).toContain("Effective Talos configuration");
  });

  it("replays a new issue without backfilling its throwaway memory (a server's first event would)", async () => {
    const file = join(makeDataDir(), "issues.opened.json");
    writeFileSync(file, JSON.stringify(webhookExample("issues", "opened")));
    const { code, out, err } = await runTalos(["replay", file], { env: { LOG_LEVEL: "debug" } });
    expect(code).toBe(0);
    expect(out).toContain("0 planned write(s)");
    expect(err).toContain(
      "GitHub request: GET https://api.github.com/repos/Codertocat/Hello-World/contents/.github%2Ftalos.yml - 404",
    );
    expect(err).not.toMatch(
      /backfill|GET https:\/\/api\.github\.com\/repos\/Codertocat\/Hello-World -/,
    );
  });

  it("plans nothing for a bot's comment", async () => {
    const { code, out } = await talos("replay", "fixtures/issue_comment.created.bot.json");
    expect(code).toBe(0);
    expect(out).toContain("0 planned write(s)");
  });

  it("takes the event from --event when the file name does not tell it", async () => {
    const file = join(makeDataDir(), "delivery.json");
    writeFileSync(
      file,
      JSON.stringify({
        action: "added",
        installation: { id: 2 },
        repositories_added: [],
        sender: { login: "octocat", type: "User" },
      }),
    );
    expect((await talos("replay", file)).code).toBe(2);
    const { code, out } = await talos("replay", file, "--event", "installation_repositories");
    expect(code).toBe(0);
    expect(out).toContain("0 planned write(s)");
  });

  it.each([
    [["replay", "no/such/file.json"], /^talos replay: cannot read no\/such\/file\.json: ENOENT\n$/],
    [
      ["replay", "fixtures/issue_comment.created.help.json", "--event", "nonsense"],
      /^talos replay: unknown event "nonsense"\n$/,
    ],
    [["replay"], /^talos replay: replay takes one payload file/],
    [["replay", "a.json", "--bogus"], /^talos replay: Unknown option '--bogus'/],
    [["frobnicate"], /^talos: unknown subcommand "frobnicate"/],
    [[], /^talos: missing subcommand/],
  ])("exits 2 with one line for bad input: %j", async (argv, message) => {
    const { code, err } = await talos(...argv);
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 for a payload without a sender, which cannot be told from a bot's", async () => {
    const file = join(makeDataDir(), "installation_repositories.added.json");
    writeFileSync(
      file,
      JSON.stringify({ action: "added", installation: { id: 2 }, repositories_added: [] }),
    );
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toMatch(/^talos replay: .*malformed webhook payload: sender: .*\n$/);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  it("exits 2 for a file that is not JSON", async () => {
    const file = join(makeDataDir(), "issue_comment.created.json");
    writeFileSync(file, "{ not json");
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toMatch(/is not valid JSON/);
  });

  it("exits 2 for JSON that is not a payload object", async () => {
    const file = join(makeDataDir(), "issue_comment.created.json");
    writeFileSync(file, "[1, 2]");
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toMatch(/does not hold a webhook payload/);
  });

  it("exits 2 for a payload nested too deeply to journal, not a delivery to redeliver", async () => {
    const payload = readFileSync("fixtures/issue_comment.created.help.json", "utf8").trim();
    // Valid JSON that JSON.parse reads, but that JSON.stringify (the journal) cannot write back:
    // it said "delivery not journaled (Maximum call stack size exceeded); redeliver it later",
    // exit 1, where there is nothing to redeliver and the file is what is wrong.
    const deep = `${"[".repeat(100_000)}0${"]".repeat(100_000)}`;
    const file = join(makeDataDir(), "issue_comment.created.deep.json");
    writeFileSync(file, `${payload.slice(0, -1)},"extra":${deep}}`);
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toBe(`talos replay: ${file} is nested more than 1000 levels deep\n`);
  });

  it("exits 2 with an error line that quotes the file's action without its escape sequences", async () => {
    const file = join(makeDataDir(), "issue_comment.created.json");
    writeFileSync(file, JSON.stringify({ action: "\u001b]52;c;eA==\u0007\u009b2J\rmade" }));
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toBe(
      `talos replay: ${file} does not hold a payload of issue_comment: its "action" is "]52;c;eA==2J made", not one of issue_comment's\n`,
    );
  });

  it("exits 2 for a payload that lacks what the handler needs", async () => {
    const file = join(makeDataDir(), "issue_comment.created.json");
    writeFileSync(
      file,
      JSON.stringify({ action: "created", installation: { id: 2 }, comment: {} }),
    );
    const { code, err } = await talos("replay", file);
    expect(code).toBe(2);
    expect(err).toMatch(/malformed webhook payload/);
    // The job runner's "job failed; parked" log and its stack are not printed: one line.
    expect(err.trim().split("\n")).toHaveLength(1);
  });
});

describe("talos replay --fixtures with a read it has no recorded answer for", () => {
  it("says the data is missing from the directory given, not from fixtures/api", async () => {
    const fixtures = makeDataDir();
    mkdirSync(join(fixtures, "api"));
    const result = await runTalos([
      "replay",
      "fixtures/issue_comment.created.help.json",
      "--fixtures",
      fixtures,
    ]);
    expect(result.err).toContain(`no recorded data in ${fixtures}/api`);
    expect(result.err).not.toContain("in fixtures/api");
    expect(result.code).toBe(1);
  });
});
