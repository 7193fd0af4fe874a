import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
    // Real HTTP servers and child processes in the end-to-end tests need more than the default.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
