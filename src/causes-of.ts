/**
 * An error and its causes, outermost first: at most 16, each once. Errors come from libraries
 * and servers; a chain of causes that loops had held the event loop for good.
 */
export function causesOf(error: unknown): Error[] {
  const causes: Error[] = [];
  for (let cause = error; cause instanceof Error && causes.length < 16; cause = cause.cause) {
    if (causes.includes(cause)) break;
    causes.push(cause);
  }
  return causes;
}
