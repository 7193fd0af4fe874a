import { describe, expect, it } from "vitest";
import { mayReadBrokenConfig } from "../../src/commands/may-run-command.js";
import { parseRepoConfig } from "../../src/parse-repo-config.js";

// While `.github/talos.yml` has errors, OWNER alone may run commands; a repository admin
// (an organization's, who comments as MEMBER) may still run `config`, and nothing else.
describe("mayReadBrokenConfig", () => {
  const broken = parseRepoConfig({ commands: { allowed_associations: "everyone" } });
  const asked: string[] = [];
  const permission = (answer: string) => () => {
    asked.push(answer);
    return Promise.resolve(answer);
  };

  it("lets an admin run `config` while the file has errors", async () => {
    expect(broken.errors).not.toEqual([]);
    asked.length = 0;
    expect(await mayReadBrokenConfig("config", broken, permission("admin"))).toBe(true);
    expect(await mayReadBrokenConfig("config", broken, permission("write"))).toBe(false);
    expect(asked).toEqual(["admin", "write"]);
  });

  it("asks GitHub nothing for another command, a valid file, or a switched-off `config`", async () => {
    asked.length = 0;
    const valid = parseRepoConfig({});
    const off = parseRepoConfig({ commands: { disabled: ["config"], allowed: [] } });
    expect(off.errors).not.toEqual([]);
    expect(await mayReadBrokenConfig("summarize", broken, permission("admin"))).toBe(false);
    expect(await mayReadBrokenConfig("config", valid, permission("admin"))).toBe(false);
    expect(await mayReadBrokenConfig("config", off, permission("admin"))).toBe(false);
    expect(asked).toEqual([]);
  });

  it("lets the comment be parsed, before its command is known, only while the file has errors", async () => {
    asked.length = 0;
    expect(await mayReadBrokenConfig(undefined, broken, permission("none"))).toBe(true);
    expect(await mayReadBrokenConfig(undefined, parseRepoConfig({}), permission("none"))).toBe(
      false,
    );
    expect(asked).toEqual([]);
  });
});
