import type { Logger } from "pino";

/**
 * The server's logger for work a command runs: its lines are for a server's log (with stacks),
 * while a command reports what stops it in one line, so they show only with LOG_LEVEL=debug.
 */
export function quietBelowDebug(log: Logger): Logger {
  return log.isLevelEnabled("debug") ? log : log.child({}, { level: "silent" });
}
