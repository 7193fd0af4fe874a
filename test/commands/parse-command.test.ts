import { describe, expect, it } from "vitest";
import { hasCommandCandidate, parseCommand } from "../../src/commands/parse-command.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

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
    ["/talos ask what does `foo()` do?", { name: "ask", args: "what does `foo()` do?" }],
    ["/talos remember *always* rebase", { name: "remember", args: "*always* rebase" }],
    ["Some context.\n/talos config", { name: "config", args: "" }],
    ["text\n    /talos config now", { name: "config", args: "now" }],
    ["<details>\n\n/talos x\n\n</details>\n\n/talos help", { name: "help", args: "" }],
    // An HTML list item or heading shows as a Markdown one does, where no line is a command.
    [
      "<ul>\n<li>\n\n/talos review --full\n\n</li>\n</ul>\n\n/talos help",
      { name: "help", args: "" },
    ],
    ["<ol><li>\n\n/talos review --full\n\n</ol>\n\n/talos help", { name: "help", args: "" }],
    ["<h2>\n\n/talos review --full\n\n</h2>\n\n/talos help", { name: "help", args: "" }],
    // An unclosed comment inside a paragraph is text on GitHub: the next line shows.
    ["text <!-- unclosed\n/talos help", { name: "help", args: "" }],
    // Once the inline `<details>` closes, the following lines show again.
    ["text <details>\nhidden </details>\n/talos help", { name: "help", args: "" }],
    // An opener inside a bogus comment opens nothing.
    ["<? <details> ?>\n\n/talos help", { name: "help", args: "" }],
    // A quoted `>` and a raw-text element's end tag, closed: the lines after them show.
    ['<details title="a>b">\n</details>\n\n/talos help', { name: "help", args: "" }],
    ["<details>\n<script>x</script>\n</details>\n\n/talos help", { name: "help", args: "" }],
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
    ["<!-- unclosed\n/talos help"],
    ["```python title=x\n/talos help\n```"],
    ["```\n/talos help\n``` not a closing fence\n/talos config"],
    ["<pre>\n/talos help\n</pre>"],
    ["<details>\n\n/talos help\n\n</details>"],
    ["<details><summary>logs</summary>\n\n/talos help\n</details>"],
    ["<details>\n<summary>x</summary>\n/talos help\n</details>"],
    // HTML ignores the slash of a non-void element: GitHub opens a collapsed section here
    // (https://github.com/dear-github/dear-github/issues/166).
    ["<details/>\n  <summary>List details</summary>\n\n/talos help\n\n</details>"],
    ["<details />\n\n/talos help"],
    ["text <pre/>\n/talos help"],
    // A bogus comment (`<?…>`, `<![CDATA[…>`, `<!x…>`) runs to its first `>`: the `</details>`
    // in it closes nothing.
    ["<details>\n\n<? </details> ?>\n\n/talos help"],
    ["<details>\n\n<![CDATA[ </details> ]]>\n\n/talos help"],
    ["<details>\n\ntext <!x </details>>\n/talos help"],
    // A `>` in a quoted attribute value ends no tag, so the `</details>` after it is the value's.
    [
      '<details>\n<summary>Logs</summary>\n<div title="></details>">\n\n/talos help\n\n</div>\n</details>',
    ],
    ['<details>\n\ntext <img alt="></details>" src="https://example.com/x.png">\n/talos help'],
    ["<details>\n\ntext <a title='></details>'>x</a>\n/talos help\n\n</details>"],
    // Quoted in HTML, as with `>`: someone else's words.
    ["<blockquote>\n\n/talos help\n\n</blockquote>"],
    // A `</details>` in a raw-text element is its text.
    ["<details>\n<script>\n</details>\n</script>\n\n/talos help\n\n</details>"],
    ["<details>\n<textarea>\n</details>\n</textarea>\n\n/talos help\n\n</details>"],
    ["<details>\n<style>\n</details></stylesheet>\n</style>\n\n/talos help"],
    // Markup left open (a quote, a raw-text element) takes in the Markdown rendered after it.
    ['<div title="\n\n/talos help\n\n">'],
    ["<textarea>\n\n/talos help"],
    // Inline HTML opening `<details>` mid-paragraph hides the lines after it on GitHub.
    ["text <details>\n/talos help"],
    ["text <details><summary>log</summary>\nmore\n/talos help\n</details>"],
    ["- /talos help"],
    ["1. /talos help"],
    ["# /talos help"],
    ["| a |\n| - |\n| /talos help |"],
    ["Hi `code\n/talos help` x"],
    ["\\/talos help"],
    ["\t/talos help"],
  ])("ignores %j", (body) => {
    expect(parse(body)).toBeNull();
  });

  it.each([
    ["\\/talos review\n\n```\n/talos help\n```"],
    ["&#47;talos review\n\n<details>\n\n/talos help\n\n</details>"],
    ["Usage:\n\\/talos review --full\n\n    /talos help"],
  ])("ignores an escaped prefix %j, whatever other lines hold", (body) => {
    expect(parse(body)).toBeNull();
  });

  it("keeps a link's address in the arguments, after its text; an autolink once", () => {
    // Only the text had been kept: the note was "the runbook is on the wiki" (found by a review).
    expect(
      parse("/talos remember the runbook is [on the wiki](https://wiki.example.com/rb)"),
    ).toEqual({
      name: "remember",
      args: "the runbook is on the wiki (https://wiki.example.com/rb)",
    });
    expect(parse("/talos ask is <https://example.com/x> down?")).toEqual({
      name: "ask",
      args: "is https://example.com/x down?",
    });
  });

  it("writes a reference link's address once, however many links use it", () => {
    // Each use had copied it: 1,000 uses of a 4 KB address made 4 MB of arguments from a 10 KB
    // comment (found by a review).
    const url = `https://example.com/${"a".repeat(4_000)}`;
    const parsed = parse(`/talos remember ${"[x][r] ".repeat(1_000)}\n\n[r]: ${url}\n`);
    expect(parsed?.name).toBe("remember");
    expect(parsed!.args.split(url)).toHaveLength(2);
    expect(parsed!.args.length).toBeLessThan(4_000 + 2 * 1_000 + 100);
  });

  it("reads the command word as GitHub shows it, emphasis aside", () => {
    // `**ask**` had been the unknown command `ask` (found by a review).
    expect(parse("/talos **ask** why does it crash?")).toEqual({
      name: "ask",
      args: "why does it crash?",
    });
    expect(parse("/talos _summarize_")).toEqual({ name: "summarize", args: "" });
    expect(parse("/talos **ask:** what is this")).toEqual({ name: "ask", args: "what is this" });
    // Struck through, the word is not asked for.
    expect(parse("/talos ~~review~~ ask why")?.name).toBe("~~review~~");
    expect(parse(`/talos ${"*".repeat(10_000)}`)).toEqual({ name: "help", args: "" });
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

  it("looks no further than GitHub's comment limit", () => {
    expect(parseCommand(`${"a\n".repeat(40_000)}/talos help`)).toBeNull();
  });

  it("skips the parse for a comment with no line that could be a command", () => {
    expect(hasCommandCandidate("please run /talos help", { slug: "talos-bot" })).toBe(false);
    expect(hasCommandCandidate("x\n   @Talos-Bot help", { slug: "talos-bot" })).toBe(true);
    expect(hasCommandCandidate("> /talos help")).toBe(false);
  });

  it("finds a command after a lone carriage return, a line ending as CommonMark reads it", () => {
    // The pre-check split at LF only, and dropped as holding no command a comment the parse
    // (which reads CR, LF and CRLF alike) would run.
    expect(parseCommand("thanks\r/talos help")).toMatchObject({ name: "help" });
    expect(hasCommandCandidate("thanks\r/talos help")).toBe(true);
    expect(hasCommandCandidate("thanks\r\n  @Talos-Bot help", { slug: "talos-bot" })).toBe(true);
    expect(hasCommandCandidate("thanks /talos\rhelp")).toBe(false);
  });

  it("finds a prefix only at a line's start (after any whitespace) and before whitespace or the end", () => {
    const slug = { slug: "talos-bot" };
    expect(hasCommandCandidate("x\n\t\u00a0 /TALOS help")).toBe(true);
    expect(hasCommandCandidate("x\n/talos")).toBe(true);
    expect(hasCommandCandidate("/talosx help\nx /talos help")).toBe(false);
    expect(hasCommandCandidate("@Talos-Bot[bot]\thelp", slug)).toBe(true);
    expect(hasCommandCandidate("@talos-botx help\n.@talos-bot help", slug)).toBe(false);
    expect(hasCommandCandidate("/talo\n/talo /talos\n  /talos\r\n", slug)).toBe(true);
  });

  it("takes linear time on hostile input, with a command line after it", async () => {
    await expectLinearTime((text) => hasCommandCandidate(text, { slug: "talos-bot" }));
  }, 120_000);

  it("reads hostile HTML in linear time: quoted values, bogus comments and raw text", async () => {
    // One HTML block (no blank line), then a command line: every piece goes through countHiding.
    await expectLinearTime((text) => parse(`<div>\n${text.replace(/\n/g, " ")}\n/talos help`), {
      fragments: ['<a x=">" ', "<? <a x='>' ", '<a x="', "<script>", "</scripts ", "<!x "],
      runs: [],
      // 32,768 characters at 4n: a longer comment is not read at all.
      length: 8_192,
    });
  }, 120_000);
});
