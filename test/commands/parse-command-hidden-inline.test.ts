import { describe, expect, it } from "vitest";
import { parseCommand } from "../../src/commands/parse-command.js";
import { expectLinearTime } from "../helpers/hostile-input.js";

// Commands a maintainer's comment can carry where GitHub does not show them as a line the
// maintainer typed: pasted logs or quotes that hold HTML. Each must not run.
const parse = (body: string) => parseCommand(body, { slug: "talos-bot" });

const RAW_TEXT = ["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"];

describe("parseCommand and HTML opened inside a paragraph", () => {
  describe("a raw-text element or a comment, closed lines later", () => {
    it.each(RAW_TEXT.map((name) => [name]))("hides the lines inside an inline <%s>", (name) => {
      expect(parse(`see <${name}>\n/talos ask x\n</${name}>`)).toBeNull();
      expect(parse(`see <${name}>\n@talos-bot ask x\n</${name}>\n`)).toBeNull();
    });

    it.each(RAW_TEXT.map((name) => [name]))("hides them in an HTML block <%s> too", (name) => {
      expect(parse(`<${name}>\n/talos ask x\n</${name}>`)).toBeNull();
      expect(parse(`text\n\n<${name}>\n\n/talos ask x\n\n</${name}>`)).toBeNull();
    });

    it.each([
      ["see <plaintext>\n/talos ask x\n</plaintext>"],
      // `plaintext` never ends: its end tag is text.
      ["see <plaintext></plaintext>\n/talos help"],
      ["see <!--\n/talos ask x\n-->"],
      ["see <!-- a\n/talos ask x\nb -->"],
      ["see <!-- a -- b\n/talos ask x\n--->"],
      ["<!--\n/talos ask x\n-->"],
    ])("hides %j", (body) => {
      expect(parse(body)).toBeNull();
    });

    it.each([
      ["see <script>x</script>\n/talos help"],
      // Closed: the end tag ends the raw text, in the same paragraph or one before.
      ["see <script>\nx\n</script>\n/talos help"],
      ["see <textarea>\nx\n</textarea>\n\n/talos help"],
      ["see <!-- a\nb -->\n/talos help"],
      ["<!-- note -->\n/talos help"],
      ["see <!---->\n/talos help"],
    ])("reads the command after it is closed: %j", (body) => {
      expect(parse(body)).toEqual({ name: "help", args: "" });
    });
  });

  describe("a link's text", () => {
    // CommonMark renders `[see\n/talos ask x\n](…)` as one link whose text spans the lines: the
    // line shows, but as words of a link, not as a line its author typed to address the bot.
    it.each([
      ["[see\n/talos ask x\n](https://example.com)"],
      ["[see\n/talos ask x](https://example.com)"],
      ["see [the\n/talos ask x\nlog][log]\n\n[log]: https://example.com"],
      ['see <a href="https://example.com">\n/talos ask x\n</a>'],
      ['# <a href="https://example.com">\n\n/talos ask x'],
    ])("is not a command: %j", (body) => {
      expect(parse(body)).toBeNull();
    });

    it.each([
      ["[docs](https://example.com)\n/talos help"],
      ["see [the docs](https://example.com) and\n/talos help"],
      ['see <a href="https://example.com">docs</a>\n/talos help'],
      // A reference with no definition is not a link: the brackets are text.
      ["[see\n/talos help\n][nowhere]"],
    ])("leaves the line after a closed link a command: %j", (body) => {
      expect(parse(body)).toEqual({ name: "help", args: "" });
    });
  });

  describe("other HTML GitHub reads so that the line is hidden", () => {
    it.each([
      // An unclosed comment or bogus comment in a quote or a list runs past its end, to the end.
      ["> <!--\n\n/talos help"],
      ["- <!--\n\n/talos help"],
      ["> <?\n\n/talos help"],
      ["> <![CDATA[\n\n/talos help"],
      // HTML's comments end at `--!>`, and at once for `<!-->`: the `<details>` after is real.
      ["see <!-- a --!> <details> -->\n/talos help"],
      ["see <!--> <details> x\n/talos help"],
      ["see <!---> <details> x\n/talos help"],
      // A name runs to a space, `/` or `>`: `</details_x>` closes nothing, nor does `</script_`.
      ["<details>\n</details_x>\n\n/talos help"],
      ["<details>\n<script></script_></details>\n\n/talos help"],
      // In a script, `<!--<script>` makes the next `</script>` text.
      ["<details>\n<script><!--<script></script></details></script>\n\n/talos help"],
      // A `</details>` inside a table, a template or an object is out of its scope.
      ["<details>\n<table><tr><td></details></td></tr></table>\n\n/talos help"],
      ["<details>\n<template></details></template>\n\n/talos help"],
      ["<details>\n<object></details></object>\n\n/talos help"],
      ["<a href=x><details></a>\n\n/talos help"],
      // A quoted value starts only where a value does: `a=="x>` is an unquoted `="x`.
      ['<div a=="x><details>" >\n\n/talos help'],
      ['<div a=b="x><details>">\n\n/talos help'],
      // Raw text opened in a heading or a table cell runs past its end.
      ["# see <script>\n\n/talos help"],
      ["| <script> |\n| - |\n\n/talos help"],
      // Read by other rules (foreign content, select, noscript): the rest is not read.
      ["<details>\n<svg><![CDATA[ > </details> ]]></svg>\n\n/talos help"],
      ["<details>\n\n<select></details></select>\n\n/talos help"],
      ["text <noscript><details></noscript>\n\n/talos help"],
      // HTML lowers ASCII letters only: a Kelvin sign's `</\u212Abd>` closes no `<kbd>`.
      ["<div>\n<kbd>\n</\u212Abd>\n\n/talos help"],
      // Code and quotes written in HTML, as they are in Markdown.
      ["see <code>\n/talos ask x\n</code>"],
      ["see <q>\n/talos ask x\n</q>"],
      // Ruby's fallback text, which no current browser shows (found by a review); opened in an
      // HTML block, it holds the paragraphs after it.
      ["Thanks! <ruby>字<rp>\n/talos ask x\n</rp><rt>zi</rt></ruby>"],
      ["<div>\n<ruby>字<rp>\n\n/talos help\n\n</rp></ruby>\n</div>"],
    ])("hides %j", (body) => {
      expect(parse(body)).toBeNull();
    });

    it.each([
      ["<details><summary>s</summary>\n\nlog\n\n</details>\n\n/talos help"],
      ["<details>\n<a href=x>y</a>\n</details>\n\n/talos help"],
      ["<table><tr><td>x</td></tr></table>\n\n/talos help"],
      // A cell's HTML ends with the cell.
      ["| a |\n| - |\n| <code>x</code> |\n\n/talos help"],
      ["| a |\n| - |\n| <details> |\n\n/talos help"],
      ["<div title='a>b' x=\"y\">\n</div>\n\n/talos help"],
      ["<ruby>字<rp>(</rp><rt>zi</rt><rp>)</rp></ruby>\n/talos help"],
      // An `<rp>` needs no end tag: the next `<rt>` or `<rp>`, `</ruby>`, or its paragraph's end
      // ends it (it had hidden the rest of the comment).
      ["Furigana: <ruby>東京<rp>(<rt>とうきょう<rp>)</ruby> is the city.\n\n/talos help"],
      ["a <ruby>x<rp>(<rt>y</rt>\n/talos help"],
      ["I think the <rp> element is unsupported here.\n\n/talos help"],
      ["<ruby>字<rp>\n\n/talos help\n\n</rp></ruby>"],
    ])("reads the command after it is closed: %j", (body) => {
      expect(parse(body)).toEqual({ name: "help", args: "" });
    });
  });

  describe("a strikethrough", () => {
    // GitHub shows a line that starts inside one cancelled: a `forget` struck through had run
    // (found by a review).
    it.each([
      ["Not this any more:\n<s>old plan\n/talos forget note-1\n</s>"],
      ["Not this any more:\n<del>old plan\n/talos forget note-1\n</del>"],
      ["Not this any more:\n<strike>old plan\n/talos forget note-1\n</strike>"],
      ["Not this any more: ~~old plan\n/talos forget note-1\nand so on~~"],
      ["~~old plan\n/talos forget note-1~~"],
      // One tilde strikes through on GitHub as two do; markdown-it's own rule takes `~~` only.
      ["Not this any more: ~old plan\n/talos forget note-1\nand so on~"],
      ["~old plan\n/talos forget note-1~"],
      ["~old plan\n@talos-bot forget note-1\ndone~"],
      // The line starts with the tilde, not with the prefix.
      ["~/talos forget note-1~"],
      // Opened by an HTML block, it holds the paragraphs up to its end tag.
      ["<s>\n\n/talos forget note-1\n\n</s>"],
    ])("hides %j", (body) => {
      expect(parse(body)).toBeNull();
    });

    it.each([
      ["~~old plan~~\n/talos help"],
      ["Not this: ~~old\nplan~~\n/talos help"],
      ["<s>old plan</s>\n/talos help"],
      ["<del>\nold plan\n</del>\n\n/talos help"],
      // An unpaired `~~` strikes nothing through.
      ["~~ old plan\n/talos help"],
      ["~old plan~\n/talos help"],
      // A tilde after a line break is not right-flanking: it closes nothing.
      ["~old plan\n/talos help\n~"],
      // Runs of different lengths do not pair, and three tildes are text.
      ["~old plan\n/talos help\nand so on~~"],
      ["Not this: ~~~old plan\n/talos help\nand so on~~~"],
    ])("reads the command after it is closed: %j", (body) => {
      expect(parse(body)).toEqual({ name: "help", args: "" });
    });
  });

  describe("GitHub extensions that take a line into something else", () => {
    it.each([
      // Display math: GitHub renders the lines between `$$` as one formula.
      ["see\n$$\n/talos ask x\n$$"],
      ["$$ a\n/talos ask x\nb $$"],
      // A footnote definition: its lines move to the footnotes, or are dropped.
      ["[^1]: note\n/talos help"],
      ["[^1]:\n/talos help"],
      ["Report[^1].\n\n[^note]: see\nthe log\n/talos help"],
    ])("hides %j", (body) => {
      expect(parse(body)).toBeNull();
    });

    it.each([["costs $$5\n/talos help"], ["$$x$$\n/talos help"], ["[^1]: note\n\n/talos help"]])(
      "leaves %j a command",
      (body) => {
        expect(parse(body)).toEqual({ name: "help", args: "" });
      },
    );
  });

  it.each([
    ["Thanks! See [the docs](https://example.com).\n\n/talos ask why", "ask"],
    ["Press <kbd>Ctrl</kbd>+<kbd>C</kbd>, see <code>x</code>\n/talos help", "help"],
    ["<details>\n<summary>Logs</summary>\n\n```\nlog\n```\n\n</details>\n\n/talos ask", "ask"],
    ["It costs $5, or $$10\n/talos help", "help"],
    ["[docs]: https://example.com\n/talos help", "help"],
    ["Fixed in #12 <sub>(thanks)</sub><br>\n/talos help", "help"],
    ["<!-- a -->\n<!-- b -->\n/talos help", "help"],
  ])("still runs an ordinary comment's command: %j", (body, name) => {
    expect(parse(body)?.name).toBe(name);
  });

  it("reads hostile inline HTML, links and footnotes in linear time", async () => {
    // In an HTML block, a paragraph (inline HTML, links, math), a heading, a table cell and as
    // Markdown of its own, each followed by a command line: every piece goes through the HTML
    // reader, the link and math tracking and the footnote lines.
    await expectLinearTime(
      (text) => {
        const line = text.replace(/\n/g, " ");
        return [
          `<div>\n${line}\n/talos help`,
          `see ${line}\n/talos help`,
          `# ${line}\n\n| ${line} |\n| - |\n\n/talos help`,
          `${text}\n/talos help`,
        ].map((body) => parse(body));
      },
      {
        fragments: [
          "<a href=x>",
          "</a>",
          "<q></a>",
          "<q><details></q>",
          "<details></details>",
          "<td>",
          "</td><table>",
          "<script><!--",
          "</script_ ",
          "<!-- a --> ",
          "<!--> ",
          "<!-- --!",
          '<div a=="x ',
          "[a\n",
          "$$\n",
          "~~a\n",
          "~a\n",
          "a~ ~",
          "<s><del>",
          "</strike>",
          "[^1]: a\n",
        ],
        runs: [],
        // 32,768 characters at 4n: a longer comment is not read at all.
        length: 8_192,
      },
    );
  }, 120_000);
});
