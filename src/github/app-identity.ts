import type { Probot } from "probot";

export interface AppIdentity {
  id: number;
  slug: string;
  /** The login our comments are posted under, e.g. `talos-bot[bot]`. */
  botLogin: string;
}

export interface AppIdentityLoader {
  get(): Promise<AppIdentity>;
  /** The identity once a `get` has read it; undefined before. Makes no request. */
  known(): AppIdentity | undefined;
}

/**
 * Reads the app's own identity with `GET /app` once and keeps it for the life of the process.
 * A failed read is not kept, so the next event tries again.
 */
export function createAppIdentityLoader(app: Pick<Probot, "auth">): AppIdentityLoader {
  let pending: Promise<AppIdentity> | undefined;
  let loaded: AppIdentity | undefined;
  const load = async (): Promise<AppIdentity> => {
    const octokit = await app.auth();
    const { data } = await octokit.rest.apps.getAuthenticated();
    if (!data?.slug) throw new Error("GET /app returned no slug");
    loaded = { id: data.id, slug: data.slug, botLogin: `${data.slug}[bot]` };
    return loaded;
  };
  return {
    known: () => loaded,
    get() {
      pending ??= load().catch((error: unknown) => {
        pending = undefined;
        throw error;
      });
      return pending;
    },
  };
}
