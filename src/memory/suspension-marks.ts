import type { Logger } from "pino";
import { z } from "zod";
import { DamagedFileError, readJsonFile } from "../read-json-file.js";
import { writeFileAtomically } from "../write-file-atomically.js";

// Each entry is checked on its own (`#read`): one odd entry must not cost the others theirs.
const MarksSchema = z.record(z.string(), z.unknown());
const KEY = /^\d{1,16}$/;

/**
 * When each suspended installation was suspended, in a file (`suspensions.json` in the data
 * directory). GitHub sends an installation nothing while it is suspended, and its unsuspension's
 * payload no longer says since when: this is what its repositories' memories are caught up
 * from then. Each change is read, applied and written whole, atomically, one at a time.
 */
export class SuspensionMarks {
  readonly #file: string;
  readonly #log: Logger;
  #writing: Promise<unknown> = Promise.resolve();

  constructor(file: string, log: Logger) {
    this.#file = file;
    this.#log = log;
  }

  /**
   * `installation` was suspended at `at` (ISO 8601). An earlier mark is kept: a suspension
   * whose unsuspension was missed began then, and catching up from later would miss changes.
   */
  record(installation: number, at: string): Promise<void> {
    // Not an installation GitHub has (ids are safe integers), or no time: nothing to mark.
    if (!Number.isSafeInteger(installation) || !Number.isFinite(Date.parse(at)))
      return Promise.resolve();
    return this.#update((marks) => {
      const key = String(installation);
      const kept = marks[key];
      if (kept === undefined || Date.parse(at) < Date.parse(kept)) marks[key] = at;
    });
  }

  /** When `installation` was suspended, if that was recorded and not cleared since. */
  async since(installation: number): Promise<string | undefined> {
    return (await this.all()).get(installation);
  }

  /** Every installation marked, and since when: one read of the file. */
  async all(): Promise<Map<number, string>> {
    await this.#writing.catch(() => undefined);
    const marks = await this.#read();
    return new Map(Object.entries(marks).map(([key, at]) => [Number(key), at]));
  }

  /** Forgets `installation`'s mark: caught up, or uninstalled. */
  clear(installation: number): Promise<void> {
    return this.#update((marks) => void delete marks[String(installation)]);
  }

  /** Read, changed and written after the changes before it; a failed write is thrown. */
  #update(change: (marks: Record<string, string>) => void): Promise<void> {
    const update = this.#writing
      .catch(() => undefined)
      .then(async () => {
        const marks = await this.#read();
        change(marks);
        await writeFileAtomically(this.#file, `${JSON.stringify(marks)}\n`);
      });
    this.#writing = update;
    return update;
  }

  async #read(): Promise<Record<string, string>> {
    try {
      const marks: Record<string, string> = {};
      for (const [key, at] of Object.entries((await readJsonFile(this.#file, MarksSchema)) ?? {}))
        if (KEY.test(key) && typeof at === "string" && Number.isFinite(Date.parse(at)))
          marks[key] = at;
      return marks;
    } catch (error) {
      if (!(error instanceof DamagedFileError)) throw error;
      // What a damaged file held is unknown: those installations are caught up from nothing.
      this.#log.warn({ file: this.#file }, "suspension marks damaged: read as none");
      return {};
    }
  }
}
