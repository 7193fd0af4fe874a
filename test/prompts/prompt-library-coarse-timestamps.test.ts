import { describe, expect, it } from "vitest";
import { PromptLibrary, type PromptFileSystem } from "../../src/prompts/prompt-library.js";
import { createFakeClock } from "../helpers/fake-clock.js";
import { captureLogs } from "../helpers/test-app.js";

const GOOD =
  "---\ndescription: test\nvariables: [name, thread]\n---\nHello {{name}}, see {{ thread }} and {{name}} again.";
const EDITED = "---\nvariables: [name, thread]\n---\nHi {{name}} ({{thread}}), and more to say.";
// An editor truncates the file, then writes it in chunks: this one parses, cut after the last
// placeholder.
const HALF = EDITED.slice(0, EDITED.indexOf(")") + 1);

/**
 * A prompt directory on a file system whose timestamps tick once a second (ext3, HFS+, some NFS,
 * which the library names): a write is stamped with the second it was made in.
 */
function coarseFs(text: string) {
  const file = { text, stampNs: 0n };
  const fs: PromptFileSystem = {
    readdir: async () => ["greet.md"],
    stat: async () => ({
      ino: 1n,
      size: BigInt(file.text.length),
      mtimeNs: file.stampNs,
      ctimeNs: file.stampNs,
    }),
    readFile: async () => file.text,
  };
  const writeAt = (text: string, atMs: number) => {
    file.text = text;
    file.stampNs = BigInt(Math.floor(atMs / 1000) * 1000) * 1_000_000n;
  };
  return { fs, writeAt };
}

describe("a prompt file saved in place on a file system with 1 s timestamps", () => {
  it("is not served half-written when a check falls between two chunks of a save that crossed a second", async () => {
    const { fs, writeAt } = coarseFs(GOOD);
    const clock = createFakeClock(); // on a whole second
    const library = await PromptLibrary.open({
      directory: "/prompts",
      clock,
      checkIntervalMs: 1000,
      log: (await captureLogs("warn")).log,
      fs,
    });
    const render = () => library.render("greet", { name: "Ada", thread: "t" });

    clock.advance(1_999);
    writeAt(HALF, clock.now()); // a chunk at .999, stamped with its second
    clock.advance(1); // the check comes 1 ms later, before the next chunk
    expect(await render()).toBe("Hello Ada, see t and Ada again.");

    writeAt(EDITED, clock.now() + 5); // the last chunk, stamped with its second
    clock.advance(2_500); // two ticks after that stamp
    expect(await render()).toBe("Hi Ada (t), and more to say.");
  });
});
