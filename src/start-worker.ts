import { Worker } from "node:worker_threads";

/**
 * A worker thread running `script`: the compiled `.js` in `dist/`; a `.ts` file (tests and
 * benchmarks run from sources) is loaded through tsx, a development dependency.
 */
export function startWorker(script: URL): Worker {
  if (!script.pathname.endsWith(".ts")) return new Worker(script);
  return new Worker(
    `import("tsx/esm/api").then(({ tsImport }) => tsImport(${JSON.stringify(script.href)}, ${JSON.stringify(import.meta.url)}))`,
    { eval: true },
  );
}

/** The worker file `name` beside `self` (a module's `import.meta.url`), as it is run. */
export function besideModule(self: string, name: string): URL {
  return new URL(`./${name}${self.endsWith(".ts") ? ".ts" : ".js"}`, self);
}
