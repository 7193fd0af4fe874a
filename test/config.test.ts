import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  COMMAND_NAMES,
  getRepoConfigJsonSchema,
  parseEnv,
  parseRepoConfig,
  RepoConfigSchema,
} from "../src/config.js";
import { createCommandRegistry } from "../src/commands/command-registry.js";
import { ALL_COMMANDS } from "../src/commands/all-commands.js";
import { helpCommand } from "../src/commands/help-command.js";

describe("parseRepoConfig", () => {
  const defaults = RepoConfigSchema.parse({});

  it("gives the defaults for a missing file", () => {
    expect(parseRepoConfig(null)).toEqual({ config: defaults, errors: [] });
    expect(defaults.commands.allowed_associations).toEqual(["OWNER", "MEMBER", "COLLABORATOR"]);
  });

  it("keeps valid settings", () => {
    const { config, errors } = parseRepoConfig({ commands: { help_for_everyone: true } });
    expect(errors).toEqual([]);
    expect(config.commands).toEqual({ ...defaults.commands, help_for_everyone: true });
  });

  it("drops only the invalid field and names it and the file", () => {
    const { config, errors } = parseRepoConfig({
      commands: { help_for_everyone: "yes", allowed_associations: ["MEMBER"] },
    });
    expect(config.commands.allowed_associations).toEqual(["MEMBER"]);
    expect(config.commands.help_for_everyone).toBe(false);
    expect(errors).toEqual([
      expect.stringMatching(
        /^\.github\/talos\.yml: `commands\.help_for_everyone` is invalid .*using the default$/,
      ),
    ]);
  });

  it("reports each unknown key and ignores it", () => {
    const { config, errors } = parseRepoConfig({
      traige: {},
      commands: { disable: ["help"], extra: 1 },
    });
    expect(config).toEqual(defaults);
    expect(errors).toHaveLength(3);
    expect(errors.join("\n")).toContain("`commands.disable` is not a known setting");
  });

  it("falls back to the defaults when the top level is not a mapping", () => {
    for (const raw of [[1, 2], "text", 42]) {
      const { config, errors } = parseRepoConfig(raw);
      expect(config).toEqual(defaults);
      expect(errors[0]).toContain("must be a mapping");
    }
  });

  it("replaces an invalid section with its defaults", () => {
    const { config, errors } = parseRepoConfig({ commands: "all" });
    expect(config).toEqual(defaults);
    expect(errors).toHaveLength(1);
  });
});

describe("parseEnv", () => {
  it("applies defaults and treats empty values as unset", () => {
    const env = parseEnv({ TALOS_DATA_DIR: "", LOG_LEVEL: "", OPENAI_API_KEY: "" });
    expect(env.TALOS_DATA_DIR).toBe("./data");
    expect(env.LOG_LEVEL).toBe("info");
    expect(env.OPENAI_API_KEY).toBeUndefined();
  });

  it("fails with the variable's name", () => {
    expect(() => parseEnv({ TALOS_LEDGER_MAX_ENTRIES: "lots" })).toThrow(
      /TALOS_LEDGER_MAX_ENTRIES/,
    );
  });
});

describe("the committed JSON Schema", () => {
  it("matches the zod schema (run `npm run schema` after changing it)", () => {
    const committed = JSON.parse(
      readFileSync(new URL("../schema/talos.schema.json", import.meta.url), "utf8"),
    );
    expect(committed).toEqual(getRepoConfigJsonSchema());
  });
});

describe("the command registry", () => {
  it("holds exactly the commands the config can name", () => {
    const registry = createCommandRegistry(ALL_COMMANDS);
    const all = { config: RepoConfigSchema.parse({}), errors: [], found: false };
    expect(registry.enabled(all).map((c) => c.name)).toEqual([...COMMAND_NAMES]);
  });

  it("refuses a second command with a taken name", () => {
    expect(() => createCommandRegistry([helpCommand, ...ALL_COMMANDS])).toThrow(/registered twice/);
  });
});
