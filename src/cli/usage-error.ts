/** Bad input to a `talos` subcommand: reported in one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}
