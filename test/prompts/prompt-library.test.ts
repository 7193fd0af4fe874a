import { copyFileSync, renameSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  parsePrompt,
  PromptError,
  PromptLibrary,
  renderPrompt,
  type PromptFileSystem,
} from "../../src/prompts/prompt-library.js";
import { PROMPT_VARIABLES } from "../../src/prompts/prompt-variables.js";
import { createAssistant } from "../../src/agent/create-assistant.js";
import { parseEnv } from "../../src/config.js";
import { createMetrics } from "../../src/metrics/create-metrics.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { scriptedModel } from "../helpers/scripted-model.js";
import { captureLogs, makeDataDir } from "../helpers/test-app.js";

const GOOD =
  "---\ndescription: test\nvariables: [name, thread]\n---\nHello {{name}}, see {{ thread }} and {{name}} again.";

/** An in-memory prompt directory that counts every stat and read. */
function memoryFs(files: Record<string, string>) {
  const state = new Map(
    Object.entries(files).map(([name, text]) => [name, { text, mtimeNs: 1n, ctimeNs: 1n }]),
  );
  const counts = { stat: 0, readFile: 0, readdir: 0 };
  const fs: PromptFileSystem = {
    readdir: async () => (counts.readdir++, [...state.keys()]),
    stat: async (path) => {
      counts.stat++;
      const file = state.get(path.split("/").pop() ?? "");
      if (!file) throw new Error(`ENOENT: ${path}`);
      const { mtimeNs, ctimeNs } = file;
      return { ino: 1n, size: BigInt(file.text.length), mtimeNs, ctimeNs };
    },
    readFile: async (path) => {
      counts.readFile++;
      const file = state.get(path.split("/").pop() ?? "");
      if (!file) throw new Error(`ENOENT: ${path}`);
      return file.text;
    },
  };
  const edit = (name: string, text: string) => {
    const stamp = (state.get(name)?.mtimeNs ?? 0n) + 1n;
    state.set(name, { text, mtimeNs: stamp, ctimeNs: stamp });
  };
  /** A write at `atMs` on the clock, stamped as a file system stamps it (in nanoseconds). */
  const writeAt = (name: string, text: string, atMs: number) => {
    const stamp = BigInt(atMs) * 1_000_000n;
    state.set(name, { text, mtimeNs: stamp, ctimeNs: stamp });
  };
  /** A write in the tick of the last one: the file system's stamps stay as they were. */
  const rewriteInSameTick = (name: string, text: string) => {
    const file = state.get(name);
    if (file) file.text = text;
  };
  return { fs, counts, edit, writeAt, rewriteInSameTick };
}

async function openLibrary(files: Record<string, string>, checkIntervalMs = 1000) {
  const memory = memoryFs(files);
  const clock = createFakeClock();
  const logs = await captureLogs("warn");
  const library = await PromptLibrary.open({
    directory: "/prompts",
    clock,
    checkIntervalMs,
    log: logs.log,
    fs: memory.fs,
  });
  return { ...memory, clock, logs, library };
}

describe("prompt files", () => {
  it("render strictly, every placeholder replaced, in one pass", () => {
    const prompt = parsePrompt("greet", "greet.md", GOOD);
    expect(renderPrompt(prompt, { name: "Ada", thread: "{{name}}" })).toBe(
      "Hello Ada, see {{name}} and Ada again.",
    );
    expect(() => renderPrompt(prompt, { name: "Ada" })).toThrow(/missing variable\(s\): thread/);
    expect(() => renderPrompt(prompt, { name: "Ada", thread: "t", extra: "x" })).toThrow(
      /has no variable\(s\): extra/,
    );
  });

  it.each([
    ["no front matter", "Hello {{name}}", /missing the front matter/],
    [
      "an undeclared placeholder",
      "---\nvariables: [name]\n---\n{{name}} {{nmae}}",
      /undeclared variable\(s\): nmae/,
    ],
    [
      "an unused declaration",
      "---\nvariables: [name, thread]\n---\n{{name}}",
      /declared but unused variable\(s\): thread/,
    ],
    ["bad YAML", "---\nvariables: [name\n---\n{{name}}", /front matter is not valid YAML/],
    ["an unknown key", "---\nvariables: []\nmodel: gpt\n---\ntext", /Unrecognized key/],
    ["an empty template", "---\nvariables: []\n---\n", /the template is empty/],
  ])("are refused with %s, naming the file", (_case, text, reason) => {
    expect(() => parsePrompt("p", "prompts/p.md", text)).toThrow(PromptError);
    expect(() => parsePrompt("p", "prompts/p.md", text)).toThrow(reason);
    expect(() => parsePrompt("p", "prompts/p.md", text)).toThrow(/^prompts\/p\.md: /);
  });

  it("load when saved with a UTF-8 byte order mark", () => {
    // Windows editors (Notepad before 2019, Visual Studio's "UTF-8 with signature") write one,
    // and readFile(path, "utf8") keeps it as U+FEFF.
    const text = "\uFEFF---\ndescription: greet\nvariables: [name]\n---\nHello {{name}}";
    const prompt = parsePrompt("greet", "/prompts/greet.md", text);
    expect(prompt.description).toBe("greet");
    expect(renderPrompt(prompt, { name: "Ada" })).toBe("Hello Ada");
  });

  it("a broken file fails start-up with its name and the reason", async () => {
    await expect(
      openLibrary({ "good.md": GOOD, "bad.md": "---\nvariables: [a]\n---\nno placeholder" }),
    ).rejects.toThrow("/prompts/bad.md: declared but unused variable(s): a");
  });

  it("the prompts shipped in prompts/ all load, each declaring the variables the code fills", async () => {
    const logs = await captureLogs("warn");
    const library = await PromptLibrary.open({
      directory: fileURLToPath(new URL("../../prompts/", import.meta.url)),
      clock: createFakeClock(),
      checkIntervalMs: 1000,
      log: logs.log,
      required: PROMPT_VARIABLES,
    });
    expect(library.names().sort()).toEqual([
      "ask",
      "pr-summary",
      "review",
      "step-limit",
      "summarize",
      "system",
      "triage",
    ]);
    expect(Object.keys(PROMPT_VARIABLES).sort()).toEqual(library.names().sort());
  });
});

describe("the prompt cache", () => {
  it("reads nothing while the check interval lasts, and stats without reading when nothing changed", async () => {
    const { library, counts, clock } = await openLibrary({ "greet.md": GOOD });
    expect(counts).toEqual({ readdir: 1, stat: 1, readFile: 1 });

    for (let i = 0; i < 100; i++) await library.render("greet", { name: "Ada", thread: "t" });
    expect(counts).toEqual({ readdir: 1, stat: 1, readFile: 1 });

    // The first check after a read reads once more: a write in the tick of that read would have
    // left the stamps as they were.
    clock.advance(1500);
    for (let i = 0; i < 100; i++) await library.render("greet", { name: "Ada", thread: "t" });
    expect(counts).toEqual({ readdir: 1, stat: 2, readFile: 2 });

    clock.advance(1500);
    for (let i = 0; i < 100; i++) await library.render("greet", { name: "Ada", thread: "t" });
    expect(counts).toEqual({ readdir: 1, stat: 3, readFile: 2 });
  });

  it("re-reads a file after its mtime changes, without a restart", async () => {
    const { library, counts, clock, edit } = await openLibrary({ "greet.md": GOOD });
    edit("greet.md", "---\nvariables: [name, thread]\n---\nHi {{name}} ({{thread}})");

    expect(await library.render("greet", { name: "Ada", thread: "t" })).toContain("Hello Ada"); // within the interval
    clock.advance(1500);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe("Hi Ada (t)");
    expect(counts.readFile).toBe(2);
  });

  it("re-reads a file rewritten, at the same size, in the timestamp tick it was read in", async () => {
    const { library, counts, clock, rewriteInSameTick } = await openLibrary({ "greet.md": GOOD });
    // Saved again within the file system's timestamp granularity (a second on some), just after
    // the library read it: the stamps and the size do not tell.
    rewriteInSameTick("greet.md", GOOD.replace("Hello", "Howdy"));

    clock.advance(1500);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe(
      "Howdy Ada, see t and Ada again.",
    );
    // The content was compared once: unchanged stamps are trusted after that. The new text
    // cost one more stat, after its read (a save under way would have moved the version).
    clock.advance(1500);
    await library.render("greet", { name: "Ada", thread: "t" });
    clock.advance(1500);
    await library.render("greet", { name: "Ada", thread: "t" });
    expect(counts).toEqual({ readdir: 1, stat: 5, readFile: 3 });
  });

  it("re-reads a same-size rewrite in the tick of the check after the read, with a short check interval", async () => {
    const { library, clock, rewriteInSameTick } = await openLibrary({ "greet.md": GOOD }, 0);
    // With TALOS_PROMPT_CHECK_INTERVAL_MS under the file system's tick, the check after the read
    // can come in the read's tick: it must not trust the stamps yet.
    await library.render("greet", { name: "Ada", thread: "t" });
    rewriteInSameTick("greet.md", GOOD.replace("Hello", "Howdy"));

    clock.advance(60_000);
    await library.render("greet", { name: "Ada", thread: "t" });
    clock.advance(60_000);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe(
      "Howdy Ada, see t and Ada again.",
    );
  });

  it("re-reads a file replaced by one of the same size and the same mtime (a reproducible build, rsync -t)", async () => {
    const directory = makeDataDir();
    const file = join(directory, "greet.md");
    // Build tools that pin mtimes (SOURCE_DATE_EPOCH, Nix) give every version the same one.
    const pinned = new Date("2020-01-01T00:00:00Z");
    writeFileSync(file, GOOD);
    utimesSync(file, pinned, pinned);
    const clock = createFakeClock();
    const { log } = await captureLogs("warn");
    const library = await PromptLibrary.open({ directory, clock, checkIntervalMs: 1000, log });
    // rsync writes a temporary file, sets its mtime, and renames it over the old one.
    const replacement = join(directory, ".greet.md.tmp");
    writeFileSync(replacement, GOOD.replace("Hello", "Howdy"));
    utimesSync(replacement, pinned, pinned);
    renameSync(replacement, file);

    clock.advance(1500);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe(
      "Howdy Ada, see t and Ada again.",
    );
  });

  it("picks up an edit after the wall clock was stepped back (NTP)", async () => {
    const { library, clock, edit } = await openLibrary({ "greet.md": GOOD }, 2000);
    // A day ahead (a VM resumed with a stale offset), a render checks the file...
    clock.advance(86_400_000);
    await library.render("greet", { name: "Ada", thread: "t" });
    // ...then NTP puts the clock back, and an operator edits the prompt.
    clock.advance(-86_400_000 + 5_000);
    edit("greet.md", GOOD.replace("Hello", "Howdy"));

    // The check time is a day ahead: it must count as due, not hold the edit back for a day.
    clock.advance(60_000);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe(
      "Howdy Ada, see t and Ada again.",
    );
  });

  it("settles a file read before the wall clock was stepped back, rather than reading it at every check", async () => {
    const { library, counts, clock, edit } = await openLibrary({ "greet.md": GOOD });
    clock.advance(86_400_000);
    edit("greet.md", GOOD.replace("Hello", "Howdy"));
    await library.render("greet", { name: "Ada", thread: "t" }); // read a day ahead
    expect(counts.readFile).toBe(2);
    clock.advance(-86_400_000);

    // The read's tick counts from the first check after the step: one read to see the text is
    // the same, one a tick later to settle it, then stats only (and one after the new text's read).
    for (let i = 0; i < 5; i++) {
      clock.advance(1500);
      await library.render("greet", { name: "Ada", thread: "t" });
    }
    expect(counts).toEqual({ readdir: 1, stat: 8, readFile: 4 });
  });

  it("keeps the last good version when an edit breaks the file, and logs it", async () => {
    const { library, clock, edit, logs } = await openLibrary({ "greet.md": GOOD });
    edit("greet.md", "---\nvariables: [name]\n---\nHi {{nam}}");
    clock.advance(1500);

    expect(await library.render("greet", { name: "Ada", thread: "t" })).toContain("Hello Ada");
    const line = logs
      .lines()
      .find((l) => String(l.msg).includes("still using the previous version"));
    expect(line).toMatchObject({ file: "/prompts/greet.md", level: 50 });
  });
});

describe("a prompt file saved in place", () => {
  const EDITED = "---\nvariables: [name, thread]\n---\nHi {{name}} ({{thread}}), and more to say.";
  // An editor truncates the file, then writes it in chunks: this one parses, cut after the last
  // placeholder.
  const HALF = EDITED.slice(0, EDITED.indexOf(")") + 1);
  const render = (library: PromptLibrary) => library.render("greet", { name: "Ada", thread: "t" });

  it("is not served half-written: a read in the middle of the save waits for the next check", async () => {
    const { library, clock, counts, writeAt } = await openLibrary({ "greet.md": GOOD });
    expect(parsePrompt("greet", "greet.md", HALF).template).toBe("Hi {{name}} ({{thread}})");
    clock.advance(1500);
    writeAt("greet.md", HALF, clock.now()); // the check comes between two chunks

    expect(await render(library)).toBe("Hello Ada, see t and Ada again.");
    expect(counts).toEqual({ readdir: 1, stat: 3, readFile: 2 });
    writeAt("greet.md", EDITED, clock.now() + 5); // the last chunk

    clock.advance(2500);
    expect(await render(library)).toBe("Hi Ada (t), and more to say.");
  });

  it("is not served when the save began between the check's stat and its read", async () => {
    // A file server whose clock is behind: the ctime does not tell, the stat after the read does.
    const { library, clock, fs, writeAt } = await openLibrary({ "greet.md": GOOD });
    const readFile = fs.readFile;
    fs.readFile = async (path) => {
      fs.readFile = readFile;
      writeAt("greet.md", HALF, clock.now() - 60_000);
      return readFile(path);
    };
    clock.advance(1500);

    expect(await render(library)).toBe("Hello Ada, see t and Ada again.");
    writeAt("greet.md", EDITED, clock.now() - 60_000);
    clock.advance(1500);
    expect(await render(library)).toBe("Hi Ada (t), and more to say.");
  });

  it("goes live at the first check two seconds after its last write, also with a short check interval", async () => {
    const { library, clock, writeAt } = await openLibrary({ "greet.md": GOOD }, 100);
    clock.advance(1500);
    writeAt("greet.md", EDITED, clock.now() - 50);

    const served: string[] = [];
    for (let i = 0; i < 22; i++) {
      clock.advance(100);
      served.push(await render(library));
    }
    // 1,950 ms after the write, the previous text; from 2,050 ms, the edit.
    expect(served.slice(0, 19).every((s) => s.startsWith("Hello"))).toBe(true);
    expect(served.slice(19).every((s) => s === "Hi Ada (t), and more to say.")).toBe(true);
  });

  it("goes live at once when its ctime is ahead of the clock (a clock stepped back since)", async () => {
    const { library, clock, writeAt } = await openLibrary({ "greet.md": GOOD });
    writeAt("greet.md", EDITED, clock.now() + 3_600_000);
    clock.advance(1500);

    expect(await render(library)).toBe("Hi Ada (t), and more to say.");
  });
});

describe("prompt edits the code cannot fill", () => {
  it("keeps the last good version when an edit changes the variables, and logs it", async () => {
    const { library, clock, edit, logs } = await openLibrary({ "greet.md": GOOD });
    // Valid on its own, but the code still fills `name` and `thread`: every render would throw.
    edit("greet.md", "---\nvariables: [name]\n---\nHi {{name}}");
    clock.advance(1500);

    expect(await library.render("greet", { name: "Ada", thread: "t" })).toBe(
      "Hello Ada, see t and Ada again.",
    );
    const line = logs
      .lines()
      .find((l) => String(l.msg).includes("still using the previous version"));
    expect(line).toMatchObject({ file: "/prompts/greet.md", level: 50 });
    expect(String((line?.err as { message?: string } | undefined)?.message)).toContain(
      "declares name; the code fills name, thread",
    );
  });

  it("keeps the last good version while a file is missing, and logs it", async () => {
    const { library, clock, fs, logs } = await openLibrary({ "greet.md": GOOD });
    const stat = fs.stat;
    fs.stat = async (path) => {
      throw Object.assign(new Error(`ENOENT: no such file or directory, stat '${path}'`), {
        code: "ENOENT",
      });
    };
    clock.advance(1500);

    expect(await library.render("greet", { name: "Ada", thread: "t" })).toContain("Hello Ada");
    expect(logs.lines().find((l) => String(l.msg).includes("cannot be read"))).toMatchObject({
      file: "/prompts/greet.md",
      level: 50,
    });
    // Back again, unchanged: served as before.
    fs.stat = stat;
    clock.advance(1500);
    expect(await library.render("greet", { name: "Ada", thread: "t" })).toContain("Hello Ada");
  });

  it("logs each outage of a file, also one after the file came back unchanged", async () => {
    const { library, clock, fs, logs } = await openLibrary({ "greet.md": GOOD });
    const render = async () => {
      clock.advance(1500);
      await library.render("greet", { name: "Ada", thread: "t" });
    };
    const outages = () => logs.lines().filter((l) => String(l.msg).includes("cannot be read"));
    const stat = fs.stat;
    const gone = async () => {
      throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    };
    await render(); // the check after the read: the version is trusted from now on
    fs.stat = gone;
    await render();
    await render();
    expect(outages()).toHaveLength(1);
    fs.stat = stat;
    await render(); // back, the same file: no read, and the outage is over
    fs.stat = gone;
    await render();
    expect(outages()).toHaveLength(2);
  });

  it("fails start-up when a prompt the code uses is missing or declares other variables", async () => {
    const memory = memoryFs({ "greet.md": "---\nvariables: [name]\n---\nHi {{name}}" });
    const logs = await captureLogs("warn");
    const open = (required: Record<string, readonly string[]>) =>
      PromptLibrary.open({
        directory: "/prompts",
        clock: createFakeClock(),
        checkIntervalMs: 1000,
        log: logs.log,
        fs: memory.fs,
        required,
      });

    await expect(open({ greet: ["name"], ask: ["thread", "question"] })).rejects.toThrow(
      "/prompts/ask.md: missing; Talos needs this prompt (variables: thread, question)",
    );
    await expect(open({ greet: ["name", "thread"] })).rejects.toThrow(
      "/prompts/greet.md: declares name; the code fills name, thread",
    );
    await expect(open({ greet: ["name"] })).resolves.toBeInstanceOf(PromptLibrary);
  });
});

describe("a prompt directory of the operator's own (TALOS_PROMPTS_DIR)", () => {
  it("must hold every prompt the code uses, with its variables: start-up says which is missing", async () => {
    const directory = makeDataDir();
    const shipped = fileURLToPath(new URL("../../prompts/", import.meta.url));
    for (const name of ["system.md", "step-limit.md", "ask.md"])
      copyFileSync(join(shipped, name), join(directory, name));
    const { log } = await captureLogs("warn");
    const start = () =>
      createAssistant({
        env: parseEnv({ TALOS_PROMPTS_DIR: directory }),
        model: scriptedModel(),
        metrics: createMetrics(),
        clock: createFakeClock(),
        log,
      });

    await expect(start()).rejects.toThrow(
      `${join(directory, "pr-summary.md")}: missing; Talos needs this prompt (variables: pull_request, scope, previous, diff, not_reviewed)`,
    );
    for (const name of ["pr-summary.md", "review.md", "summarize.md", "triage.md"])
      copyFileSync(join(shipped, name), join(directory, name));
    await expect(start()).resolves.toBeDefined();
  });

  it("leaves out hidden files: an editor's lock file and a macOS copy's metadata are no prompts", async () => {
    const directory = makeDataDir();
    writeFileSync(join(directory, "greet.md"), GOOD);
    // Emacs's lock beside a file being edited is a dangling symlink; a tarball made on macOS
    // carries AppleDouble `._` files. Each failed start-up.
    symlinkSync("someone@host.4242:1700000000", join(directory, ".#greet.md"));
    writeFileSync(join(directory, "._greet.md"), Buffer.from([0, 5, 22, 7, 0, 2, 0, 0]));
    const { log } = await captureLogs("warn");
    const library = await PromptLibrary.open({
      directory,
      clock: createFakeClock(),
      checkIntervalMs: 1000,
      log,
    });
    expect(library.names()).toEqual(["greet"]);
  });
});
