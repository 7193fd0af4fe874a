import type { RedisOptions } from "ioredis";

/**
 * For a budget's Redis, which every job asks before its work: a command fails at once while
 * Redis is away, and after 2 s when it took the command and did not answer (a stuck server, a
 * partition with no reset), rather than holding the job and its concurrency slot until the
 * connection gives up. Redis answers these in well under a millisecond. The job then fails and
 * is retried; it never runs unbudgeted. A new object for each client: ioredis keeps what it is
 * given.
 */
export function failFastRedisOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
  };
}
