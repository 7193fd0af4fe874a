import type { Logger } from "pino";
import { z } from "zod";
import { DamagedFileError, readJsonFile } from "../read-json-file.js";
import { writeFileAtomically } from "../write-file-atomically.js";
import type { BackfillTarget } from "./backfill-runner.js";

const QueueSchema = z.array(
  z.object({
    installation: z.number().int().positive(),
    repository: z.number().int().positive(),
    name: z.string().max(200),
    max: z.number().int().min(1).max(1_000_000).optional(),
    since: z.string().max(100).optional(),
  }),
);

/**
 * The backfills queued and not yet run, in a file (`backfill-queue.json` in the data directory).
 * They run one at a time, for hours on a large installation, and the queue itself is in RAM: a
 * restart meanwhile would lose those that had not started (a started one leaves progress that
 * the next start resumes), and a catch-up a command asked for (it has no progress of its own:
 * it is kept until it ends). Written whole, atomically, at each change, one write at a time.
 */
export class BackfillQueueFile {
  readonly #file: string;
  readonly #log: Logger;
  #writing: Promise<unknown> = Promise.resolve();

  constructor(file: string, log: Logger) {
    this.#file = file;
    this.#log = log;
  }

  /** What was queued when the last run stopped; none when the file is missing or damaged. */
  async read(): Promise<BackfillTarget[]> {
    try {
      return (await readJsonFile(this.#file, QueueSchema)) ?? [];
    } catch (error) {
      if (error instanceof DamagedFileError)
        this.#log.warn({ file: this.#file }, "queued backfills not resumed: the file is damaged");
      else this.#log.warn({ err: error, file: this.#file }, "cannot read the queued backfills");
      return [];
    }
  }

  /**
   * Writes `targets` as the queue; a failure is logged (the backfills still run), and resolves
   * false.
   */
  save(targets: BackfillTarget[]): Promise<boolean> {
    const text = `${JSON.stringify(
      targets.map(({ installation, repository, name, max, since }) => ({
        installation,
        repository,
        name,
        ...(max === undefined ? {} : { max }),
        ...(since === undefined ? {} : { since }),
      })),
    )}\n`;
    const saved = this.#writing
      .then(() => writeFileAtomically(this.#file, text))
      .then(
        () => true,
        (error: unknown) => {
          this.#log.warn({ err: error, file: this.#file }, "cannot write the queued backfills");
          return false;
        },
      );
    this.#writing = saved;
    return saved;
  }
}
