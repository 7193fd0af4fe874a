import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { getFreePort, makeWorkDir, ROOT } from "./helpers/server-process.js";
import { makeDataDir } from "./helpers/test-app.js";

describe("npm start with NODE_ENV=production (the Dockerfile's) and no APP_ID", () => {
  it("is bad input: exit 2 and one line naming APP_ID", async () => {
    const cwd = makeWorkDir();
    const result = spawnSync(
      process.execPath,
      ["--import", join(ROOT, "node_modules/tsx/dist/esm/index.mjs"), join(ROOT, "src/main.ts")],
      {
        cwd,
        encoding: "utf8",
        timeout: 90_000,
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          NODE_ENV: "production",
          TALOS_DATA_DIR: makeDataDir(),
          PORT: String(await getFreePort()),
        },
      },
    );
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/APP_ID/);
    expect(result.status).toBe(2);
  }, 120_000);
});
