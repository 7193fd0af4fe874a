import type { Logger } from "pino";
import { z } from "zod";
import { DamagedFileError, readJsonFile } from "../read-json-file.js";
import { writeFileAtomically } from "../write-file-atomically.js";

// Each entry is checked on its own (`#read`): one odd entry must not cost the others theirs.
const MarksSchema = z.record(z.string(), z.unknown());
// An installation's id as written: `042` would be read as 42, which clearing 42 never removed.
const KEY = /^[1-9]\d{0,15}$/;

/**
 * When each suspended installation was suspended. GitHub sends an installation nothing while it
 * is suspended, and its unsuspension's payload no longer says since when: this is what its
 * repositories' memories are caught up from then. In a file (`FileSuspensionMarks`), or with
 * DATABASE_URL in PostgreSQL (`PostgresSuspensionMarks`), which every instance shares: the
 * suspension one instance saw is there for the one that sees the unsuspension.
 */
export interface SuspensionMarks {
  /**
   * `installation` was suspended at `at` (ISO 8601). An earlier mark is kept: a suspension
   * whose unsuspension was missed began then, and catching up from later would miss changes.
   */
  record(installation: number, at: string): Promise<void>;
  /** When `installation` was suspended, if that was recorded and not cleared since. */
  since(installation: number): Promise<string | undefined>;
  /** Every installation marked, and since when: one read. */
  all(): Promise<Map<number, string>>;
  /** Forgets `installation`'s mark: caught up, or uninstalled. */
  clear(installation: number): Promise<void>;
}

/**
 * A mark worth keeping: an installation GitHub could have (ids are safe integers), and a time
 * since 1970 (one before is a clock gone wrong; PostgreSQL's times end at 4713 BC, JavaScript's
 * do not).
 */
export const isMark = (installation: number, at: string): boolean =>
  Number.isSafeInteger(installation) && Date.parse(at) >= 0;

/**
 * The marks in a file (`suspensions.json` in the data directory). Each change is read, applied
 * and written whole, atomically, one at a time.
 */
export class FileSuspensionMarks implements SuspensionMarks {
  readonly #file: string;
  readonly #log: Logger;
  #writing: Promise<unknown> = Promise.resolve();

  constructor(file: string, log: Logger) {
    this.#file = file;
    this.#log = log;
  }

  record(installation: number, at: string): Promise<void> {
    if (!isMark(installation, at)) return Promise.resolve();
    return this.#update((marks) => {
      const key = String(installation);
      const kept = marks[key];
      if (kept === undefined || Date.parse(at) < Date.parse(kept)) marks[key] = at;
    });
  }

  async since(installation: number): Promise<string | undefined> {
    return (await this.all()).get(installation);
  }

  async all(): Promise<Map<number, string>> {
    await this.#writing.catch(() => undefined);
    const marks = await this.#read();
    return new Map(Object.entries(marks).map(([key, at]) => [Number(key), at]));
  }

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
        if (KEY.test(key) && typeof at === "string" && isMark(Number(key), at)) marks[key] = at;
      return marks;
    } catch (error) {
      if (!(error instanceof DamagedFileError)) throw error;
      // What a damaged file held is unknown: those installations are caught up from nothing.
      this.#log.warn({ file: this.#file }, "suspension marks damaged: read as none");
      return {};
    }
  }
}
