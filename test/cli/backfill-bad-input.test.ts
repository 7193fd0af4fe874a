import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runTalos } from "../helpers/run-talos.js";
import { makeDataDir } from "../helpers/test-app.js";

const TOKEN = { GITHUB_TOKEN: "ghp_backfillBadInputToken0123456789abcdef" };

describe("talos backfill given bad input (no request is mocked: none may be made)", () => {
  it.each([
    [["backfill"], /takes one repository/],
    [["backfill", "acme"], /owner\/repo/],
    [["backfill", "acme/widgets", "extra"], /takes one repository/],
    [["backfill", "acme/widgets", "--installation", "07"], /numeric installation id/],
    [
      ["backfill", "acme/widgets", "--installation", "7", "--max", "0"],
      /--max takes a whole number/,
    ],
    [
      ["backfill", "acme/widgets", "--installation", "7", "--max", "1e3"],
      /--max takes a whole number/,
    ],
    [["backfill", "acme/widgets", "--installation", "7", "--since", "2999-01-01"], /--since takes/],
    [["backfill", "acme/widgets", "--installation", "7", "--since", "2021-02-29"], /--since takes/],
    [["backfill", "acme/widgets", "--installation", "7", "--bogus"], /bogus/],
    [["backfill", "acme/widgets", "--installation"], /installation/],
    [["backfill", "../x", "--installation", "7"], /owner\/repo/],
  ])("%j exits 2 with one line", async (argv, message) => {
    const result = await runTalos(argv, { env: { ...TOKEN, TALOS_DATA_DIR: makeDataDir() } });
    expect(result.err).toMatch(message);
    expect(result.err.trim().split("\n")).toHaveLength(1);
    expect(result.code).toBe(2);
  });

  it("reads the same .env as the server, from the working directory", async () => {
    const cwd = makeDataDir();
    writeFileSync(join(cwd, ".env"), "TALOS_BACKFILL_MAX=0\n");
    const result = await runTalos(["backfill", "acme/widgets", "--installation", "7"], {
      cwd,
      env: { ...TOKEN, TALOS_DATA_DIR: makeDataDir() },
    });
    expect(result.err).toMatch(/backfills are off \(TALOS_BACKFILL_MAX=0\)/);
    expect(result.code).toBe(2);
  });
});
