import { mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomically } from "../write-file-atomically.js";

/**
 * The most removals remembered; past it the oldest are forgotten. A removal only has to outlive
 * the jobs journaled before it (retried for at most hours), and GitHub's redeliveries of them.
 */
const MAX_REMOVED = 10_000;
const KEY = /^\d{1,16}(\/\d{1,16})?$/;

/**
 * Memories removed with their repository or installation (`<installation>` or
 * `<installation>/<repository>`), kept in a file so that a restart keeps refusing them: a job
 * journaled before the removal, run after it (a retry, or after a restart), would otherwise
 * write its repository's memory into being again. Oldest first, bounded by MAX_REMOVED.
 */
export class RemovedMemories {
  readonly #file: string;
  readonly #keys = new Set<string>();
  #saving: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.#file = file;
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** In this process at once; `save` makes it durable. */
  add(key: string): void {
    this.#keys.delete(key);
    this.#keys.add(key);
    for (const oldest of this.#keys) {
      if (this.#keys.size <= MAX_REMOVED) break;
      this.#keys.delete(oldest);
    }
  }

  /** Forgets a removal (the repository was added back); `save` makes it durable. */
  delete(key: string): boolean {
    return this.#keys.delete(key);
  }

  /** Reads the file; removals made in this process before it are kept, as the newest. */
  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.#file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const stored: unknown = JSON.parse(text);
    if (!Array.isArray(stored) || !stored.every((key) => typeof key === "string" && KEY.test(key)))
      throw new Error(`${this.#file} is damaged`);
    const added = [...this.#keys];
    this.#keys.clear();
    for (const key of [...stored, ...added]) this.add(key);
  }

  /** Writes what is held now, after the writes before it (only after `load`). */
  save(): Promise<void> {
    const write = this.#saving.then(async () => {
      await mkdir(dirname(this.#file), { recursive: true });
      await writeFileAtomically(this.#file, `${JSON.stringify([...this.#keys])}\n`);
    });
    this.#saving = write.catch(() => undefined);
    return write;
  }
}
