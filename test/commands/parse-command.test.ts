import { describe, expect, it } from "vitest";
import { parseCommand } from "../../src/commands/parse-command.js";

const parse = (body: string) => parseCommand(body, { slug: "talos-bot" });

describe("parseCommand", () => {
  it.each([
    ["/talos help", { name: "help", args: "" }],
    ["/TALOS Help", { name: "help", args: "" }],
    ["/talos ask why does the build fail?", { name: "ask", args: "why does the build fail?" }],
    ["/talos", { name: "help", args: "" }],
    ["  /talos config", { name: "config", args: "" }],
    ["@talos-bot config", { name: "config", args: "" }],
    ["@Talos-Bot[bot] summarize now", { name: "summarize", args: "now" }],
    ["Thanks!\r\n/talos similar\r\n", { name: "similar", args: "" }],
    ["/talos help.", { name: "help", args: "" }],
  ])("reads %j", (body, expected) => {
    expect(parse(body)).toEqual(expected);
  });

  it.each([
    ["no command here"],
    ["please run /talos help"],
    ["/talosx help"],
    ["@talos-botx help"],
    ["@someone-else help"],
    ["    /talos help"],
    ["> /talos help"],
    ["  > quoted\n> /talos help"],
    ["```\n/talos help\n```"],
    ["~~~md\n/talos help\n~~~"],
    ["````\n```\n/talos help\n```\n````"],
    ["<!-- /talos help -->"],
    ["<!--\n/talos help\n-->"],
    ["text <!-- unclosed\n/talos help"],
  ])("ignores %j", (body) => {
    expect(parse(body)).toBeNull();
  });

  it("runs only the first command", () => {
    expect(parse("/talos config\n/talos help")).toEqual({ name: "config", args: "" });
  });

  it("finds a command after a closed code block", () => {
    expect(parse("```\n/talos help\n```\n/talos config")).toEqual({ name: "config", args: "" });
  });

  it("does not know the mention form without a slug", () => {
    expect(parseCommand("@talos-bot help")).toBeNull();
  });

  it("treats a slug as text, not as a pattern", () => {
    expect(parseCommand("@axb help", { slug: "a.b" })).toBeNull();
  });
});
