/**
 * Waits for a condition that another process (the started server) will make true, polling every
 * few milliseconds. Deliveries are acknowledged once journaled and run afterwards, so a test
 * against the real server looks for their effects this way. The bound only ends a hung test; it
 * is not a speed requirement.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what = "the condition",
  boundMs = 20_000,
): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > boundMs) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
