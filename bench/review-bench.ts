import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BaseMessage } from "@langchain/core/messages";
import { pino } from "pino";
import { Probot } from "probot";
import { createTokenCounter, type TokenCounter } from "../src/agent/count-tokens.js";
import { parseEnv, RepoConfigSchema } from "../src/config.js";
import { createTalos, type Talos } from "../src/index.js";
import { MarkdownWorkers, type MarkdownService } from "../src/markdown/markdown-workers.js";
import {
  startGitHubStandIn,
  type GitHubStandIn,
  type StandInPull,
  type StandInPullFile,
} from "../test/helpers/github-stand-in.js";
import { ScriptedChatModel } from "../test/helpers/scripted-model.js";
import { loadFixture, TEST_APP_ID, TEST_PRIVATE_KEY } from "../test/helpers/test-app.js";
import { printTable } from "./stats.js";

// The issue's target: over the pushes, incremental reviews read at least 60% fewer prompt
// tokens than reviewing the whole pull request again after each push.
const TARGET_FEWER = 0.6;
const REPO = "Codertocat/Hello-World";
const NUMBER = 2;
const MAINTAINER = "Codertocat";
const SEED = 20_261_124;
// Workers started from TypeScript sources take seconds on a loaded machine; a missed deadline
// would turn a command into plain text, so the pool gets a generous one (as in the tests).
const MARKDOWN_DEADLINE_MS = 30_000;
const REVIEWS_PATH = `/repos/${REPO}/pulls/${NUMBER}/reviews`;
// What the benchmark counts is reviews: no summaries. `on_push` is what tells the modes apart.
const CONFIG = {
  incremental: "pull_requests:\n  enabled: false\nreview:\n  on_push: true\n",
  full: "pull_requests:\n  enabled: false\nreview:\n  on_push: false\n",
} as const;
type Mode = keyof typeof CONFIG;

export interface ReviewBenchOptions {
  json: boolean;
  /** Pushes after the first review, 1 to 5; 5 by default. Tests pass fewer. */
  pushes?: number;
}

/* ------------------------------------------------------------------------------------------ */
/* The scenario: a dark-theme pull request of 40 files, then five small pushes.                */
/* ------------------------------------------------------------------------------------------ */

/** A line of a file; its id follows it through edits, which is how diffs are taken. */
interface Line {
  id: number;
  text: string;
}

type FileKind = "code" | "test" | "docs" | "lockfile";

interface Gen {
  random: () => number;
  pick<T>(items: readonly T[]): T;
  int(min: number, max: number): number;
  lines(texts: string[]): Line[];
}

/** The modules of the editor; those in NEW_MODULES are added by the pull request. */
const MODULES = [
  "buffer",
  "clipboard",
  "colours",
  "commands",
  "cursor",
  "editor",
  "fonts",
  "gutter",
  "highlight",
  "history",
  "keymap",
  "layout",
  "markers",
  "palette",
  "panes",
  "search",
  "selection",
  "settings",
  "shortcuts",
  "snippets",
  "store",
  "tabs",
  "theme",
  "tokens",
] as const;
const TESTED = [
  "buffer",
  "cursor",
  "highlight",
  "history",
  "keymap",
  "layout",
  "palette",
  "search",
  "selection",
  "settings",
  "store",
  "tabs",
  "theme",
] as const;
const NEW_MODULES = new Set<string>(["palette", "highlight", "snippets"]);
const FIELDS = [
  "name",
  "size",
  "colour",
  "offset",
  "width",
  "height",
  "mode",
  "limit",
  "scale",
  "index",
  "delay",
  "label",
  "contrast",
  "weight",
];
const VERBS = [
  "apply",
  "create",
  "update",
  "reset",
  "read",
  "resolve",
  "format",
  "measure",
  "toggle",
  "clamp",
  "merge",
  "restore",
];
const SUFFIXES = ["", "State", "Options", "Range", "Style", "Entry", "Value"];
const PACKAGES = [
  "@codemirror/state",
  "@codemirror/view",
  "@lezer/common",
  "@lezer/highlight",
  "@types/node",
  "ansi-styles",
  "chalk",
  "color-convert",
  "color-name",
  "commander",
  "crelt",
  "debug",
  "eslint",
  "esbuild",
  "fast-deep-equal",
  "lodash.merge",
  "minimatch",
  "ms",
  "nanoid",
  "picocolors",
  "postcss",
  "prettier",
  "semver",
  "style-mod",
  "supports-color",
  "tslib",
  "typescript",
  "vite",
  "vitest",
  "w3c-keyname",
];
const NEW_PACKAGES = ["culori", "wcag-contrast", "@lezer/css"];
// Sentences of the documentation: a subject, what it does, and to what.
const DOC_SUBJECTS = [
  "The dark theme",
  "Each palette",
  "The theme picker",
  "A custom theme",
  "The high-contrast palette",
  "The status bar",
  "Syntax highlighting",
  "The gutter",
];
const DOC_VERBS = [
  "reads its colours from",
  "falls back to",
  "follows",
  "keeps its contrast against",
  "is chosen from",
  "is saved with",
  "can override",
  "takes its font size from",
];
const DOC_OBJECTS = [
  "the active scheme",
  "the light defaults",
  "the system setting",
  "the settings file",
  "the current workspace",
  "`editor.theme`",
  "the palette's tokens",
  "the user's keymap",
];

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function createGen(seed: number): Gen {
  const random = mulberry32(seed);
  let next = 1;
  return {
    random,
    pick: (items) => items[Math.floor(random() * items.length)]!,
    int: (min, max) => min + Math.floor(random() * (max - min + 1)),
    lines: (texts) => texts.map((text) => ({ id: next++, text })),
  };
}

/** The third person of a verb: "applies", "resets". */
const thirdPerson = (verb: string) => (verb.endsWith("y") ? `${verb.slice(0, -1)}ies` : `${verb}s`);
const plural = (noun: string) => (noun.endsWith("x") ? `${noun}es` : `${noun}s`);
const capitalize = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
const typeName = (module: string) => capitalize(module.replace(/s$/, ""));
const sha = (label: string) =>
  createHash("sha1").update(`talos-review-bench:${label}`).digest("hex");

/** One statement of a function body, about `subject`, indented by `indent`. */
function statement(g: Gen, subject: string, indent = "  "): string {
  const [f, f2] = [g.pick(FIELDS), g.pick(FIELDS)];
  const v = `${f}${capitalize(g.pick(["value", "next", "current", "resolved"]))}`;
  const templates = [
    () => `const ${v} = ${subject}.${f} ?? options.${f2};`,
    () => `if (!${subject}.${f}) return ${g.pick(["undefined", "null", "[]", `options.${f2}`])};`,
    () =>
      `if (${subject}.${f} > ${g.int(2, 400)}) throw new RangeError(\`${subject} ${f} out of range: \${${subject}.${f}}\`);`,
    () => `${subject}.${f} = Math.min(${subject}.${f}, options.${f2});`,
    () =>
      `log.debug({ ${f}: ${subject}.${f} }, "${subject} ${f} ${g.pick(["read", "set", "kept"])}");`,
    () =>
      `for (const entry of ${subject}.${plural(f)} ?? []) ${g.pick(VERBS)}${capitalize(f2)}(entry, options);`,
    () => `const ${v} = await ${g.pick(VERBS)}${capitalize(f)}(${subject}, options.${f2});`,
    () =>
      `if (${subject}.${f} === options.${f2}) continue;`.replace("continue", "return undefined"),
  ];
  return indent + g.pick(templates)();
}

function codeFunction(g: Gen, module: string): string[] {
  const [verb, field] = [g.pick(VERBS), g.pick(FIELDS)];
  const name = `${verb}${typeName(module)}${g.pick(SUFFIXES)}`;
  const subject = module.replace(/s$/, "");
  return [
    `/** ${capitalize(thirdPerson(verb))} the ${subject}'s ${field}, within the editor's options. */`,
    `export ${g.random() < 0.3 ? "async " : ""}function ${name}(${subject}: ${typeName(module)}, options: EditorOptions) {`,
    ...Array.from({ length: g.int(4, 8) }, () => statement(g, subject)),
    `  return { ...${subject}, ${field}: ${subject}.${field} };`,
    "}",
  ];
}

function codeModule(g: Gen, module: string): string[] {
  const lines = [
    `import type { EditorOptions } from "./editor.js";`,
    `import { ${g.pick(VERBS)}${typeName(g.pick(MODULES))} } from "./${g.pick(MODULES)}.js";`,
    `import { log } from "../log.js";`,
    "",
    `export interface ${typeName(module)} {`,
    ...Array.from(
      { length: g.int(3, 6) },
      () => `  ${g.pick(FIELDS)}: ${g.pick(["string", "number", "boolean"])};`,
    ),
    "}",
  ];
  for (let i = g.int(5, 8); i > 0; i--) lines.push("", ...codeFunction(g, module));
  return lines;
}

function testCase(g: Gen, module: string): string[] {
  const [verb, field] = [g.pick(VERBS), g.pick(FIELDS)];
  const subject = module.replace(/s$/, "");
  return [
    `  it("${thirdPerson(verb)} the ${field} of a ${subject} ${g.pick(["in dark mode", "with no options", "past its limit", "after a reload", "twice in a row"])}", ${g.random() < 0.3 ? "async " : ""}() => {`,
    `    const ${subject} = create${typeName(module)}({ ${field}: ${g.int(0, 64)}, mode: "${g.pick(["dark", "light", "high-contrast"])}" });`,
    ...Array.from(
      { length: g.int(1, 3) },
      () =>
        `    expect(${verb}${typeName(module)}(${subject}, options).${g.pick(FIELDS)}).toBe(${g.pick(["true", "false", String(g.int(0, 99)), `"${g.pick(FIELDS)}"`])});`,
    ),
    "  });",
  ];
}

function testModule(g: Gen, module: string): string[] {
  const lines = [
    `import { describe, expect, it } from "vitest";`,
    `import { create${typeName(module)} } from "../../src/editor/${module}.js";`,
    `import { defaultOptions as options } from "../helpers/options.js";`,
    "",
    `describe("${module}", () => {`,
  ];
  for (let i = g.int(4, 7); i > 0; i--) lines.push(...testCase(g, module), "");
  lines.pop();
  lines.push("});");
  return lines;
}

function sentence(g: Gen): string {
  const clause = () => `${g.pick(DOC_VERBS)} ${g.pick(DOC_OBJECTS)}`;
  return `${g.pick(DOC_SUBJECTS)} ${clause()}${g.random() < 0.5 ? `, and ${clause()}` : ""}.`;
}

function docsModule(g: Gen): string[] {
  const lines = ["# Theming", ""];
  for (const heading of ["Choosing a theme", "Colours", "Contrast", "Writing your own theme"]) {
    lines.push(`## ${heading}`, "");
    for (let i = g.int(3, 6); i > 0; i--) lines.push(sentence(g));
    lines.push("");
  }
  lines.pop();
  return lines;
}

function version(g: Gen): string {
  return `${g.int(0, 9)}.${g.int(0, 30)}.${g.int(0, 20)}`;
}

/** The next minor or patch release of `at`. */
function bump(g: Gen, at: string): string {
  const [major, minor, patch] = at.split(".").map(Number) as [number, number, number];
  return g.random() < 0.5 ? `${major}.${minor + 1}.0` : `${major}.${minor}.${patch + 1}`;
}

function lockEntry(name: string, at: string, last: boolean): string[] {
  const integrity = createHash("sha512").update(`${name}@${at}`).digest("base64");
  // Whether it is a dev dependency, and its licence, follow from the name: the same every time.
  const byte = createHash("sha1").update(name).digest()[0]!;
  return [
    `    "node_modules/${name}": {`,
    `      "version": "${at}",`,
    `      "resolved": "https://registry.npmjs.org/${name}/-/${name.split("/").at(-1)}-${at}.tgz",`,
    `      "integrity": "sha512-${integrity}",`,
    ...(byte % 5 < 2 ? [`      "dev": true,`] : []),
    `      "license": "${["MIT", "MIT", "ISC", "Apache-2.0"][byte % 4]}"`,
    last ? "    }" : "    },",
  ];
}

/** The lockfile's lines, with the given packages at the given versions, sorted as npm does. */
function lockfile(versions: Map<string, string>): string[] {
  const names = [...versions.keys()].sort();
  return [
    "{",
    `  "name": "editor",`,
    `  "version": "2.4.0",`,
    `  "lockfileVersion": 3,`,
    `  "requires": true,`,
    `  "packages": {`,
    ...names.flatMap((name, i) => lockEntry(name, versions.get(name)!, i === names.length - 1)),
    "  }",
    "}",
  ];
}

function packageJson(versions: Map<string, string>, names: string[]): string[] {
  const dependencies = names.filter(
    (n) => !n.startsWith("@types") && !/lint|prettier|vite/.test(n),
  );
  const dev = names.filter((n) => !dependencies.includes(n));
  const list = (deps: string[]) =>
    deps.sort().map((n, i) => `    "${n}": "^${versions.get(n)}"${i < deps.length - 1 ? "," : ""}`);
  return [
    "{",
    `  "name": "editor",`,
    `  "version": "2.4.0",`,
    `  "type": "module",`,
    `  "scripts": {`,
    `    "build": "vite build",`,
    `    "test": "vitest run"`,
    "  },",
    `  "dependencies": {`,
    ...list(dependencies),
    "  },",
    `  "devDependencies": {`,
    ...list(dev),
    "  }",
    "}",
  ];
}

/** How to edit one kind of file. */
interface EditPlan {
  /** Lines an edit replaces, or inserts new lines after, with their indentation. */
  at: RegExp;
  make: (indent: string) => string[];
  /** Or a new block (a function, a test) after a line that closes one. */
  block?: { after: RegExp; make: () => string[] };
}

/**
 * Edits `lines` in `hunks` places spread over the file: each replaces up to two lines with one
 * to six new ones, inserts them, or inserts a new block after a closing line. Kept lines keep
 * their ids.
 */
function editLines(g: Gen, lines: Line[], hunks: number, plan: EditPlan): Line[] {
  const result = [...lines];
  const part = Math.floor(lines.length / hunks);
  const places: number[] = [];
  for (let h = 0; h < hunks; h++) {
    const candidates: number[] = [];
    for (let i = h * part; i < (h + 1) * part; i++) {
      const text = lines[i]!.text;
      if (plan.at.test(text) || plan.block?.after.test(text)) candidates.push(i);
    }
    if (candidates.length > 0) places.push(g.pick(candidates));
  }
  // From the end, so that earlier places stay where they were.
  for (const at of places.reverse()) {
    const text = result[at]!.text;
    if (plan.block?.after.test(text)) {
      result.splice(at + 1, 0, ...g.lines(["", ...plan.block.make()]));
      continue;
    }
    const indent = /^ */.exec(text)![0];
    let removed = 0;
    for (let want = g.random() < 0.5 ? g.int(1, 2) : 0; removed < want; removed++)
      if (!plan.at.test(result[at + removed]?.text ?? "")) break;
    const added = g.lines(Array.from({ length: g.int(1, 6) }, () => plan.make(indent)).flat());
    result.splice(at + (removed === 0 ? 1 : 0), removed, ...added);
  }
  return result;
}

/**
 * The unified diff from `before` to `after`, as GitHub's `patch`: three lines of context, hunks
 * closer than that merged, and git's section heading (the last line before the hunk that starts
 * with a letter, `_` or `$`).
 */
function diff(before: Line[], after: Line[]) {
  const kept = new Set(after.map((l) => l.id));
  const known = new Set(before.map((l) => l.id));
  const ops: Array<{ kind: " " | "-" | "+"; text: string; old: number; new: number }> = [];
  let [i, j] = [0, 0];
  while (i < before.length || j < after.length) {
    const [a, b] = [before[i], after[j]];
    if (a && b && a.id === b.id) ops.push({ kind: " ", text: a.text, old: ++i, new: ++j });
    else if (a && !kept.has(a.id)) ops.push({ kind: "-", text: a.text, old: ++i, new: j });
    else if (b && !known.has(b.id)) ops.push({ kind: "+", text: b.text, old: i, new: ++j });
    else throw new Error("review bench: a line moved, which this diff does not handle");
  }
  const changed = ops.flatMap((op, index) => (op.kind === " " ? [] : [index]));
  const groups: Array<[number, number]> = [];
  for (const index of changed) {
    const last = groups.at(-1);
    if (last && index - last[1] <= 7) last[1] = index;
    else groups.push([index, index]);
  }
  const hunks = groups.map(([first, last]) => {
    const [start, end] = [Math.max(0, first - 3), Math.min(ops.length - 1, last + 3)];
    const slice = ops.slice(start, end + 1);
    const oldCount = slice.filter((op) => op.kind !== "+").length;
    const newCount = slice.filter((op) => op.kind !== "-").length;
    const oldBefore = start === 0 ? 0 : ops[start - 1]!.old;
    const newBefore = start === 0 ? 0 : ops[start - 1]!.new;
    const heading = before
      .slice(0, oldBefore)
      .findLast((l) => /^[A-Za-z_$]/.test(l.text))
      ?.text.slice(0, 80);
    const range = (from: number, count: number) =>
      `${count === 0 ? from : from + 1}${count === 1 ? "" : `,${count}`}`;
    const header = `@@ -${range(oldBefore, oldCount)} +${range(newBefore, newCount)} @@${heading ? ` ${heading}` : ""}`;
    return [header, ...slice.map((op) => `${op.kind}${op.text}`)].join("\n");
  });
  const additions = ops.filter((op) => op.kind === "+").length;
  const deletions = ops.filter((op) => op.kind === "-").length;
  const firstAdded = ops.find((op) => op.kind === "+");
  return {
    patch: hunks.join("\n"),
    additions,
    deletions,
    firstAdded: firstAdded && { line: firstAdded.new, text: firstAdded.text },
  };
}

interface ScenarioFile {
  path: string;
  kind: FileKind;
  base: Line[];
}

/** A line the scripted model comments on: on the diff of its run in both modes. */
interface Target {
  path: string;
  line: number;
  text: string;
}

interface Push {
  message: string;
  paths: string[];
}

export interface Scenario {
  files: ScenarioFile[];
  base: string;
  /** heads[0] is the head the first review sees; heads[k] the head after push k. */
  heads: string[];
  pushes: Push[];
  /** The pull request's files at each head, as `pulls/{n}/files` lists them. */
  pullFiles: StandInPullFile[][];
  /** comparisons[k] (k ≥ 1): the files of `compare/{heads[k-1]}...{heads[k]}`. */
  comparisons: StandInPullFile[][];
  /** The line the model's comment is on, at each head. */
  targets: Target[];
}

function pullFile(file: ScenarioFile, before: Line[], after: Line[], added: boolean) {
  const { patch, additions, deletions, firstAdded } = diff(before, after);
  const json: StandInPullFile = {
    filename: file.path,
    status: added ? "added" : "modified",
    additions,
    deletions,
    changes: additions + deletions,
    patch,
  };
  return { json, firstAdded };
}

/** The pull request and its pushes, the same on every run. */
export function createScenario(): Scenario {
  const g = createGen(SEED);
  const files: ScenarioFile[] = [];
  const heads = new Map<string, Line[]>();
  const add = (path: string, kind: FileKind, base: string[], head: (base: Line[]) => Line[]) => {
    const file = { path, kind, base: g.lines(base) };
    files.push(file);
    heads.set(path, head(file.base));
  };
  const subject = (module: string) => module.replace(/s$/, "");
  const plans = {
    code: (module: string): EditPlan => ({
      at: /^ {2}(?:const|if|for|log)\b|^ {2}\w+\.\w+ = /,
      make: (indent) => [statement(g, subject(module), indent)],
      block: { after: /^}$/, make: () => codeFunction(g, module) },
    }),
    test: (module: string): EditPlan => ({
      at: /^ {4}expect\(/,
      make: (indent) => [
        `${indent}expect(${subject(module)}.${g.pick(FIELDS)}).toBe(${g.int(0, 99)});`,
      ],
      block: { after: /^ {2}\}\);$/, make: () => testCase(g, module) },
    }),
    docs: (): EditPlan => ({ at: /^[A-Z][a-z]/, make: () => [sentence(g)] }),
  };
  for (const module of MODULES) {
    const path = `src/editor/${module}.ts`;
    if (NEW_MODULES.has(module)) add(path, "code", [], () => g.lines(codeModule(g, module)));
    else
      add(path, "code", codeModule(g, module), (base) =>
        editLines(g, base, g.int(2, 4), plans.code(module)),
      );
  }
  for (const module of TESTED) {
    const path = `test/editor/${module}.test.ts`;
    if (NEW_MODULES.has(module)) add(path, "test", [], () => g.lines(testModule(g, module)));
    else
      add(path, "test", testModule(g, module), (base) =>
        editLines(g, base, g.int(2, 3), plans.test(module)),
      );
  }
  add("docs/theming.md", "docs", docsModule(g), (base) => editLines(g, base, 3, plans.docs()));
  const versions = new Map(PACKAGES.map((name) => [name, version(g)]));
  const newVersions = new Map(versions);
  for (const name of NEW_PACKAGES) newVersions.set(name, version(g));
  for (const name of ["@codemirror/view", "style-mod"])
    newVersions.set(name, bump(g, versions.get(name)!));
  add("package.json", "code", packageJson(versions, PACKAGES), (base) =>
    reuse(base, g.lines(packageJson(newVersions, [...newVersions.keys()]))),
  );
  add("package-lock.json", "lockfile", lockfile(versions), (base) =>
    reuse(base, g.lines(lockfile(newVersions))),
  );
  files.sort((a, b) => (a.path < b.path ? -1 : 1));

  const pushes: Push[] = [
    {
      message: "Fall back to the light theme for an unknown name",
      paths: ["src/editor/theme.ts", "test/editor/theme.test.ts"],
    },
    { message: "Keep Escape bound in the theme picker", paths: ["src/editor/keymap.ts"] },
    {
      message: "Raise the palette's minimum contrast; document it",
      paths: ["src/editor/palette.ts", "docs/theming.md"],
    },
    {
      message: "Persist the chosen theme",
      paths: ["src/editor/settings.ts", "src/editor/store.ts", "test/editor/settings.test.ts"],
    },
    { message: "Bump culori", paths: ["package.json", "package-lock.json"] },
  ];
  const base = sha("base");
  const headShas = [sha("head-0")];
  const states = [new Map(heads)];
  const comparisons: StandInPullFile[][] = [[]];
  const targets: Target[] = [];
  for (const [k, push] of pushes.entries()) {
    const before = states[k]!;
    const after = new Map(before);
    const bumped = new Map(newVersions).set("culori", bump(g, newVersions.get("culori")!));
    for (const path of push.paths) {
      const lines = before.get(path)!;
      const file = files.find((f) => f.path === path)!;
      const module = path.replace(/^.*\/|\..*$/g, "");
      // A push changes a little: one or two places, and no new function or test.
      const small = (plan: EditPlan) =>
        editLines(g, lines, g.int(1, 2), { ...plan, block: undefined });
      const edited =
        path === "package.json"
          ? reuse(lines, g.lines(packageJson(bumped, [...bumped.keys()])))
          : path === "package-lock.json"
            ? reuse(lines, g.lines(lockfile(bumped)))
            : small(
                file.kind === "docs" ? plans.docs() : plans[file.kind as "code" | "test"](module),
              );
      after.set(path, edited);
    }
    states.push(after);
    headShas.push(sha(`head-${k + 1}`));
    comparisons.push(
      push.paths.map((path) => {
        const file = files.find((f) => f.path === path)!;
        return pullFile(file, before.get(path)!, after.get(path)!, false).json;
      }),
    );
  }
  const pullFiles = states.map((state) =>
    files.map((file) => pullFile(file, file.base, state.get(file.path)!, file.base.length === 0)),
  );
  // The first review's comment is on the theme module; each push's on its first file's change.
  targets.push(targetOf("src/editor/theme.ts", files, states[0]!));
  for (const [k, push] of pushes.entries())
    targets.push(targetOf(push.paths[0]!, files, states[k]!, states[k + 1]!));
  return {
    files,
    base,
    heads: headShas,
    pushes,
    pullFiles: pullFiles.map((list) => list.map((f) => f.json)),
    comparisons,
    targets,
  };
}

/**
 * `after`, with the ids of `before` for every line that is the same text in the same order:
 * regenerated files (package.json, the lockfile) diff as a tool would diff them.
 */
function reuse(before: Line[], after: Line[]): Line[] {
  // The longest common subsequence of the texts; these files are a few hundred lines.
  const n = before.length;
  const m = after.length;
  const table = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      table[i]![j] =
        before[i]!.text === after[j]!.text
          ? table[i + 1]![j + 1]! + 1
          : Math.max(table[i + 1]![j]!, table[i]![j + 1]!);
  const result = [...after];
  let [i, j] = [0, 0];
  while (i < n && j < m) {
    if (before[i]!.text === after[j]!.text) result[j++] = before[i++]!;
    else if (table[i + 1]![j]! >= table[i]![j + 1]!) i++;
    else j++;
  }
  return result;
}

function targetOf(
  path: string,
  files: ScenarioFile[],
  before: Map<string, Line[]>,
  after?: Map<string, Line[]>,
): Target {
  const file = files.find((f) => f.path === path)!;
  const [from, to] = after ? [before.get(path)!, after.get(path)!] : [file.base, before.get(path)!];
  const added = diff(from, to).firstAdded;
  if (!added) throw new Error(`review bench: ${path} adds no line to comment on`);
  return { path, line: added.line, text: added.text };
}

/* ------------------------------------------------------------------------------------------ */
/* The runs: Talos in Probot, against the GitHub stand-in, with the scripted model.            */
/* ------------------------------------------------------------------------------------------ */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Payload = Record<string, any>;

export interface ReviewRun {
  run: string;
  trigger: string;
  head: string;
  /** Files changed by the push (0 for the first review). */
  filesPushed: number;
  /** "whole" or the short commit the review read from. */
  covers: string;
  filesReviewed: number;
  filesNotReviewed: number;
  inlineComments: number;
  /** The review call's messages, counted with createTokenCounter(). */
  promptTokens: number;
  /** What talos_llm_tokens_total{kind="review",direction="input"} grew by. */
  metricTokens: number;
}

interface ModeResult {
  runs: ReviewRun[];
  reviews: number;
  modelCalls: number;
  githubRequests: number;
  wallMs: number;
}

const textOf = (message: BaseMessage) =>
  typeof message.content === "string"
    ? message.content
    : message.content.map((part) => ("text" in part ? String(part.text) : "")).join("");

async function metricSums(talos: Talos) {
  const tokens = (await talos.metrics.llmTokens.get()).values
    .filter((v) => v.labels.kind === "review" && v.labels.direction === "input")
    .reduce((sum, v) => sum + v.value, 0);
  const histogram = (await talos.metrics.reviewFiles.get()).values.filter(
    (v) => v.metricName === "talos_review_files_sum" && v.labels.kind === "review",
  );
  const sum = (outcome: string) =>
    histogram.filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0);
  return { tokens, reviewed: sum("reviewed"), skipped: sum("skipped") };
}

function pullAt(scenario: Scenario, k: number): StandInPull {
  return {
    number: NUMBER,
    title: "Add a dark theme to the editor",
    body: "Closes #1. Adds a dark theme and a high-contrast palette, a theme switch in the settings, and a picker bound to Ctrl+K T. The chosen theme is persisted per workspace.",
    state: "open",
    draft: false,
    user: { login: MAINTAINER, type: "User" },
    head: { sha: scenario.heads[k]!, ref: "dark-theme" },
    base: { sha: scenario.base, ref: "main" },
    files: scenario.pullFiles[k]!,
  };
}

/** The model's answer for run k: a verdict, and on every other run one comment on a diff line. */
function answerFor(scenario: Scenario, k: number): string {
  const target = scenario.targets[k]!;
  const comments =
    k % 2 === 0
      ? [
          {
            path: target.path,
            line: target.line,
            severity: "minor",
            body: `This line runs on every theme change; \`${target.text.trim().slice(0, 40)}\` could be computed once when the palette loads.`,
          },
        ]
      : [];
  const verdict =
    k === 0
      ? "The dark theme and the palette are well separated and tested. Before merging, the picker should not throw on an unknown theme name."
      : `This push ("${scenario.pushes[k - 1]!.message}") looks right; nothing blocks a merge.`;
  return JSON.stringify({ verdict, comments });
}

async function runMode(
  mode: Mode,
  scenario: Scenario,
  pushes: number,
  counter: TokenCounter,
  markdown: MarkdownService,
): Promise<ModeResult> {
  const started = performance.now();
  const github = await startGitHubStandIn();
  github.setFile(REPO, ".github/talos.yml", CONFIG[mode]);
  github.setPull(REPO, pullAt(scenario, 0));
  // Anything Talos logs at warn or above (a failed job, an answer that was not JSON, a refused
  // inline comment) means the runs did not go as they should: the benchmark stops on it.
  const problems: string[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void problems.push(line) });
  const model = new ScriptedChatModel();
  const dataDir = mkdtempSync(join(tmpdir(), "talos-review-bench-"));
  const talos = await createTalos({
    env: parseEnv({ TALOS_DATA_DIR: dataDir }),
    log,
    version: "bench",
    ephemeralJobs: true,
    model,
    octokit: { throttle: false, retry: false },
    markdown,
  });
  // As the server does before it listens: the encoder is built now, not in the first review.
  talos.services.tokenCounter.warm();
  try {
    const probot = new Probot({
      appId: TEST_APP_ID,
      privateKey: TEST_PRIVATE_KEY,
      log,
      Octokit: talos.Octokit,
      baseUrl: github.url,
    });
    await probot.load(talos.app, { cwd: process.cwd(), addHandler: () => undefined });
    let deliveries = 0;
    const deliver = async (name: string, payload: Payload) => {
      await probot.receive({ id: `review-bench-${mode}-${deliveries++}`, name, payload } as never);
      await talos.services.jobs.idle();
      if (problems.length > 0)
        throw new Error(`review bench (${mode}): Talos logged a problem: ${problems[0]}`);
    };
    const command = (body: string) => {
      const comment = github.addComment(REPO, NUMBER, { body, login: MAINTAINER });
      const payload = loadFixture<Payload>("issue_comment.created.review.json");
      Object.assign(payload.comment, { id: comment.id, body, created_at: comment.created_at });
      return deliver("issue_comment", payload);
    };
    const push = (k: number) => {
      const payload = loadFixture<Payload>("pull_request.synchronize.json");
      payload.before = scenario.heads[k - 1];
      payload.after = scenario.heads[k];
      payload.pull_request.head.sha = scenario.heads[k];
      payload.pull_request.changed_files = scenario.pullFiles[k]!.length;
      return deliver("pull_request", payload);
    };

    const opened = loadFixture<Payload>("pull_request.opened.json");
    opened.pull_request.head.sha = scenario.heads[0];
    await deliver("pull_request", opened);

    const runs: ReviewRun[] = [];
    const measure = async (k: number, trigger: string, action: () => Promise<void>) => {
      const before = {
        calls: model.calls.length,
        requests: github.requests.length,
        metrics: await metricSums(talos),
      };
      model.respond(answerFor(scenario, k));
      await action();
      const calls = model.calls.slice(before.calls);
      if (calls.length !== 1)
        throw new Error(`review bench (${mode}, run ${k}): ${calls.length} model calls, not 1`);
      const review = checkWrites(mode, k, github.requests.slice(before.requests), scenario);
      const after = await metricSums(talos);
      const covers = /covering (?:the changes since `([0-9a-f]{7})`|the whole pull request)/.exec(
        review.body,
      );
      if (!covers) throw new Error(`review bench (${mode}, run ${k}): the review says no scope`);
      runs.push({
        run: k === 0 ? "first review" : `push ${k}`,
        trigger,
        head: scenario.heads[k]!.slice(0, 7),
        filesPushed: k === 0 ? 0 : scenario.pushes[k - 1]!.paths.length,
        covers: covers[1] ?? "whole",
        filesReviewed: after.reviewed - before.metrics.reviewed,
        filesNotReviewed: after.skipped - before.metrics.skipped,
        inlineComments: review.comments,
        promptTokens: calls[0]!.messages.reduce(
          (sum, m) => sum + counter.countTokens(textOf(m)),
          0,
        ),
        metricTokens: after.tokens - before.metrics.tokens,
      });
    };

    await measure(0, "/talos review", () => command("/talos review"));
    for (let k = 1; k <= pushes; k++) {
      github.setPull(REPO, pullAt(scenario, k));
      github.setComparison(REPO, scenario.heads[k - 1]!, scenario.heads[k]!, {
        status: "ahead",
        files: scenario.comparisons[k]!,
      });
      if (mode === "incremental") {
        await measure(k, "synchronize", () => push(k));
        const expected = scenario.heads[k - 1]!.slice(0, 7);
        if (runs.at(-1)!.covers !== expected)
          throw new Error(
            `review bench: the review of push ${k} covers ${runs.at(-1)!.covers}, not the changes since ${expected}`,
          );
      } else {
        // The push is delivered as GitHub would; with review.on_push off it reviews nothing.
        const calls = model.calls.length;
        const writes = github.writes().length;
        await push(k);
        if (model.calls.length !== calls || github.writes().length !== writes)
          throw new Error(`review bench (full): push ${k} was reviewed with review.on_push off`);
        await measure(k, "/talos review --full", () => command("/talos review --full"));
      }
    }
    checkReviews(mode, github, scenario, pushes);
    return {
      runs,
      reviews: github.reviews.get(`${REPO}#${NUMBER}`)?.length ?? 0,
      modelCalls: model.calls.length,
      githubRequests: github.requests.length,
      wallMs: performance.now() - started,
    };
  } finally {
    await talos.close();
    await github.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The writes of one run: one review, `COMMENT`, pinned to the head of that run, accepted; and
 * nothing else but the 👀 reaction to a command.
 */
function checkWrites(
  mode: Mode,
  k: number,
  requests: GitHubStandIn["requests"],
  scenario: Scenario,
) {
  const where = `review bench (${mode}, run ${k})`;
  const writes = requests.filter((r) => r.method !== "GET" && !r.path.endsWith("/access_tokens"));
  const reviews = writes.filter((r) => r.method === "POST" && r.path === REVIEWS_PATH);
  const others = writes.filter((r) => !reviews.includes(r) && !r.path.endsWith("/reactions"));
  if (others.length > 0)
    throw new Error(`${where}: unexpected writes: ${others.map((r) => r.path).join(", ")}`);
  if (reviews.length !== 1) throw new Error(`${where}: ${reviews.length} reviews posted, not 1`);
  const posted = reviews[0]!;
  const body = posted.body as { event?: string; commit_id?: string; body?: string; comments?: [] };
  if (posted.status !== 200) throw new Error(`${where}: GitHub answered ${posted.status}`);
  if (body.event !== "COMMENT") throw new Error(`${where}: the review's event is ${body.event}`);
  if (body.commit_id !== scenario.heads[k])
    throw new Error(
      `${where}: the review is pinned to ${body.commit_id}, not ${scenario.heads[k]}`,
    );
  return { body: body.body ?? "", comments: body.comments?.length ?? 0 };
}

/** At the end: exactly one review per run, each COMMENTED on the head of its run. */
function checkReviews(mode: Mode, github: GitHubStandIn, scenario: Scenario, pushes: number) {
  const reviews = github.reviews.get(`${REPO}#${NUMBER}`) ?? [];
  const expected = scenario.heads.slice(0, pushes + 1);
  const got = reviews.map((r) => `${r.state} ${r.commit_id}`);
  const want = expected.map((head) => `COMMENTED ${head}`);
  if (JSON.stringify(got) !== JSON.stringify(want))
    throw new Error(
      `review bench (${mode}): reviews ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`,
    );
}

/* ------------------------------------------------------------------------------------------ */
/* The report.                                                                                 */
/* ------------------------------------------------------------------------------------------ */

function total(runs: ReviewRun[]) {
  return {
    runs: runs.length,
    promptTokens: runs.reduce((sum, r) => sum + r.promptTokens, 0),
    metricTokens: runs.reduce((sum, r) => sum + r.metricTokens, 0),
    filesReviewed: runs.reduce((sum, r) => sum + r.filesReviewed, 0),
  };
}

export async function runReviewBench(options: ReviewBenchOptions) {
  const pushes = options.pushes ?? 5;
  if (!Number.isInteger(pushes) || pushes < 1 || pushes > 5)
    throw new Error(`review bench: pushes must be a whole number from 1 to 5, not ${pushes}`);
  const scenario = createScenario();
  const counter = createTokenCounter();
  counter.warm();
  const markdown = new MarkdownWorkers({
    deadlineMs: MARKDOWN_DEADLINE_MS,
    log: pino({ level: "silent" }),
  });
  let incremental: ModeResult;
  let full: ModeResult;
  try {
    await markdown.parseCommand("/talos help", { slug: "talos-bot" });
    incremental = await runMode("incremental", scenario, pushes, counter, markdown);
    full = await runMode("full", scenario, pushes, counter, markdown);
  } finally {
    await markdown.close();
  }
  const describe = (mode: ModeResult) => ({
    ...mode,
    first: total(mode.runs.slice(0, 1)),
    pushes: total(mode.runs.slice(1)),
    all: total(mode.runs),
  });
  const inc = describe(incremental);
  const naive = describe(full);
  const fewer = (a: number, b: number) => 1 - a / b;
  const measured = fewer(inc.pushes.promptTokens, naive.pushes.promptTokens);
  const disagreements = [...inc.runs, ...naive.runs].filter(
    (r) => r.promptTokens !== r.metricTokens,
  ).length;
  const files = scenario.files.map((f) => f.kind);
  const result = {
    suite: "review",
    scenario: {
      files: scenario.files.length,
      byKind: Object.fromEntries(
        ["code", "test", "docs", "lockfile"].map((kind) => [
          kind,
          files.filter((k) => k === kind).length,
        ]),
      ),
      additions: scenario.pullFiles[0]!.reduce((sum, f) => sum + f.additions, 0),
      deletions: scenario.pullFiles[0]!.reduce((sum, f) => sum + f.deletions, 0),
      pushes: scenario.pushes.slice(0, pushes).map((p, i) => ({
        head: scenario.heads[i + 1]!.slice(0, 7),
        message: p.message,
        files: p.paths,
        additions: scenario.comparisons[i + 1]!.reduce((sum, f) => sum + f.additions, 0),
        deletions: scenario.comparisons[i + 1]!.reduce((sum, f) => sum + f.deletions, 0),
      })),
    },
    maxTokens: RepoConfigSchema.parse({}).review.max_tokens,
    model:
      "test/helpers/scripted-model.ts: one review JSON per call, every other one with an inline comment on a diff line",
    github: "test/helpers/github-stand-in.ts, in process",
    counting:
      "the messages of each review call (system and prompt), counted with createTokenCounter() (cl100k_base), no per-message overhead",
    incremental: inc,
    full: naive,
    fewer: {
      pushes: measured,
      all: fewer(inc.all.promptTokens, naive.all.promptTokens),
    },
    metric: {
      name: 'talos_llm_tokens_total{kind="review",direction="input"}',
      runsThatDiffer: disagreements,
      incremental: inc.all.metricTokens,
      full: naive.all.metricTokens,
    },
    target: { fewer: TARGET_FEWER, measured, met: measured >= TARGET_FEWER },
  };
  if (!options.json) printReport(result);
  return result;
}

type ReviewResult = Awaited<ReturnType<typeof runReviewBench>>;

function printReport(r: ReviewResult): void {
  const s = r.scenario;
  // Rounded before the sign is shown: a difference of a few tokens is "0.0%", not "-0.0%".
  const percent = (x: number) => `${(Math.round(x * 1000) / 10 || 0).toFixed(1)}%`;
  console.log(
    `review: one pull request of ${s.files} files (${s.byKind.code} code, ${s.byKind.test} tests, ${s.byKind.docs} doc, ${s.byKind.lockfile} lockfile; +${s.additions} −${s.deletions}), then ${s.pushes.length} pushes of 1–3 files`,
  );
  console.log(`GitHub: ${r.github}; model: ${r.model}`);
  console.log(`tokens: ${r.counting}; review.max_tokens ${r.maxTokens} (the default)\n`);
  const reads = (run: ReviewRun) => {
    const of = `${run.filesReviewed} of ${run.filesReviewed + run.filesNotReviewed} files`;
    return run.covers === "whole" ? `whole PR, ${of}` : `since ${run.covers}, ${of}`;
  };
  const rows: Array<Record<string, string | number>> = r.incremental.runs.map((inc, i) => {
    const full = r.full.runs[i]!;
    return {
      run: inc.run,
      head: inc.head,
      pushed:
        inc.filesPushed === 0
          ? ""
          : `${inc.filesPushed} ${inc.filesPushed === 1 ? "file" : "files"}`,
      "incremental reads": reads(inc),
      "incremental tokens": inc.promptTokens,
      "full re-review reads": reads(full),
      "full tokens": full.promptTokens,
      fewer: percent(1 - inc.promptTokens / full.promptTokens),
    };
  });
  for (const [name, key] of [
    [`pushes 1–${s.pushes.length}`, "pushes"],
    [`all ${r.incremental.runs.length} runs`, "all"],
  ] as const)
    rows.push({
      run: name,
      "incremental tokens": r.incremental[key].promptTokens,
      "full tokens": r.full[key].promptTokens,
      fewer: percent(r.fewer[key]),
    });
  printTable(rows);
  console.log(
    "\nincremental: `/talos review` once, then each pull_request.synchronize reviews that push's changes on its own (compare API)",
  );
  console.log(
    "full (naive baseline): the same first review, then `/talos review --full` after each push (review.on_push: false)",
  );
  console.log(
    `reviews: ${r.incremental.reviews} per mode, each event COMMENT and pinned to the head of its run (checked); inline comments posted: incremental ${sum(r.incremental.runs, "inlineComments")}, full ${sum(r.full.runs, "inlineComments")}`,
  );
  console.log(
    "the first review is the same command in both modes: counts differ by a few tokens from run to run, as each run's fence tag is random",
  );
  console.log(
    r.metric.runsThatDiffer === 0
      ? `${r.metric.name} agrees with the count on every run (Talos estimates it with the same counter: the scripted model reports no usage)`
      : `${r.metric.name} differs from the count on ${r.metric.runsThatDiffer} runs: incremental ${r.metric.incremental}, full ${r.metric.full} in all`,
  );
  console.log(
    `\ntarget: incremental reviews of the ${s.pushes.length} pushes use ≥ ${percent(r.target.fewer)} fewer prompt tokens than full re-reviews: ${r.target.met ? "met" : "not met"} (${percent(r.target.measured)} fewer; ${percent(r.fewer.all)} over all ${r.incremental.runs.length} runs)`,
  );
}

function sum(runs: ReviewRun[], key: "inlineComments"): number {
  return runs.reduce((s, r) => s + r[key], 0);
}
