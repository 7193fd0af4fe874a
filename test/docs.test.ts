import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { EnvSchema, RepoConfigSchema } from "../src/config.js";

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), "utf8");

// The documentation is what maintainers configure from: it must not drift from the code.
describe("the documentation", () => {
  it(".env.example lists every variable the environment schema reads", () => {
    const documented = new Set(
      [...read(".env.example").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]),
    );
    const missing = Object.keys(EnvSchema.shape).filter((name) => !documented.has(name));
    expect(missing).toEqual([]);
  });

  it("the README's .github/talos.yml example holds exactly the defaults", () => {
    const section = read("README.md").split("## Per-repository configuration")[1] ?? "";
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(yaml).toBeDefined();
    expect(RepoConfigSchema.parse(parse(yaml!))).toEqual(RepoConfigSchema.parse({}));
  });
});
