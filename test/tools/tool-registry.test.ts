import { z } from "zod";
import { describe, expect, it } from "vitest";
import { defineTool } from "../../src/tools/define-tool.js";
import { READ_TOOLS } from "../../src/tools/read-tools.js";
import { ToolRegistry } from "../../src/tools/tool-registry.js";

const makeTool = (name: string) =>
  defineTool({ name, description: "a test tool", schema: z.object({}), execute: async () => "ok" });

describe("the tool registry", () => {
  it("treats registering the same tool again as a no-op", () => {
    const tool = makeTool("get_thing");
    const registry = new ToolRegistry().register(tool).register(tool, tool);
    expect(registry.size).toBe(1);
    expect(registry.get("get_thing")).toBe(tool);
  });

  it("throws when a different tool takes a registered name", () => {
    const registry = new ToolRegistry().register(makeTool("get_thing"));
    expect(() => registry.register(makeTool("get_thing"))).toThrow(
      /a different tool is already registered as "get_thing"/,
    );
  });

  it("looks tools up by name", () => {
    const registry = new ToolRegistry().register(...READ_TOOLS);
    expect(registry.list().map((t) => t.name)).toEqual([
      "get_issue",
      "list_comments",
      "search_issues",
      "get_file",
      "list_labels",
    ]);
    expect(registry.get("get_file")?.name).toBe("get_file");
    expect(registry.get("delete_repo")).toBeUndefined();
  });

  it("refuses names the model could misread, and tools without a description", () => {
    for (const name of ["getFile", "get-file", "_get", "get__file", "Get_file"]) {
      expect(() => makeTool(name)).toThrow(/not snake_case/);
    }
    expect(() =>
      defineTool({ name: "x", description: " ", schema: z.object({}), execute: async () => "" }),
    ).toThrow(/no description/);
  });

  it("never lets the model choose the owner, repository or installation", () => {
    for (const tool of READ_TOOLS) {
      expect(Object.keys(tool.schema.shape)).not.toEqual(expect.arrayContaining(["owner"]));
      for (const forbidden of ["owner", "repo", "repository", "installation", "installation_id"]) {
        expect(tool.schema.shape).not.toHaveProperty(forbidden);
      }
    }
  });
});
