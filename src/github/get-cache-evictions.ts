import { REPO_CONFIG_PATH } from "../config.js";
import { ANY_INSTALLATION, type EvictionScope } from "./github-cache.js";

/** Repositories of one delivery evicted one by one; more evict their installation whole. */
const MAX_REPOSITORY_SCOPES = 16;

interface Repository {
  full_name?: string;
  name?: string;
  default_branch?: string;
  owner?: { login?: string };
}

interface ChangePayload {
  action?: string;
  installation?: { id?: number };
  repository?: Repository;
  repositories_added?: Array<{ full_name?: string }>;
  repositories_removed?: Array<{ full_name?: string }>;
  changes?: {
    default_branch?: unknown;
    repository?: { name?: { from?: string } };
    owner?: { from?: { user?: { login?: string }; organization?: { login?: string } } };
  };
  member?: { login?: string };
  issue?: { number?: number };
  pull_request?: { number?: number };
  number?: number;
  ref?: string;
  commits?: Array<{ added?: string[]; modified?: string[]; removed?: string[] }>;
  head_commit?: unknown;
  forced?: boolean;
}

/**
 * Which cache entries a webhook says are out of date. Pure: the event pipeline evicts them
 * before anything else handles the event, so no handler can read data the event made stale.
 */
export function getCacheEvictions(name: string, payload: ChangePayload): EvictionScope[] {
  const installation = payload.installation?.id;
  if (installation === undefined) return [];
  const inst = String(installation);
  const repo = payload.repository?.full_name?.toLowerCase();
  const action = payload.action;

  switch (name) {
    case "installation":
      // Gone, suspended, or able to read other things now: nothing cached for it is trustworthy.
      return action === "deleted" || action === "suspend" || action === "new_permissions_accepted"
        ? [{ installation: inst }]
        : [];
    case "installation_repositories": {
      // Removed: nothing read of it may be served. Added: reads from before the app could see it
      // were 404s, and 404s are cached (the owner's `.github` config fallback, say).
      const listed = [
        ...(payload.repositories_added ?? []),
        ...(payload.repositories_removed ?? []),
      ].filter((r) => r.full_name);
      // Each scope is a pass over the whole cache: a delivery listing an organisation's
      // thousands of repositories held the event loop for seconds. Past a few, the whole
      // installation's entries go, in one pass.
      if (listed.length > MAX_REPOSITORY_SCOPES) return [{ installation: inst }];
      return listed.map((r) => ({ installation: inst, repo: String(r.full_name).toLowerCase() }));
    }
    case "repository": {
      if (!repo) return [];
      // Renamed or transferred: what was read under the old name is stale too.
      const previous = getPreviousName(payload);
      const names = previous ? [repo, previous] : [repo];
      // A new default branch changes where config and files are read from.
      const newBranch = payload.changes?.default_branch !== undefined;
      // Created: whatever was read under its name before it existed was a 404 (the owner's
      // `.github` config fallback, say), and 404s are cached.
      const whole = ["created", "renamed", "transferred", "deleted"].includes(action ?? "");
      const evictions: EvictionScope[] =
        whole || newBranch
          ? names.map((r) => ({ installation: inst, repo: r }))
          : [{ installation: inst, repo, kind: "repo" }];
      // Its config and files as every installation reads them: one whose config extends this
      // (public) repository's is told of no event of it. It had kept a deleted or privatized
      // base's wider settings for the TTL (found by a review); publicized, it had kept a 404.
      const visibility = action === "privatized" || action === "publicized";
      if (whole || newBranch || visibility)
        for (const r of names)
          evictions.push(
            { installation: ANY_INSTALLATION, repo: r, kind: "config" },
            { installation: ANY_INSTALLATION, repo: r, kind: "file" },
          );
      return evictions;
    }
    case "label": {
      if (!repo) return [];
      const labels: EvictionScope[] = [{ installation: inst, repo, kind: "labels" }];
      // Issues and pull requests carry their labels (name, color, description); an edited or
      // deleted label changes them all, and GitHub sends no event for each of them.
      if (action === "edited" || action === "deleted")
        labels.push(
          { installation: inst, repo, kind: "issue" },
          { installation: inst, repo, kind: "pull" },
        );
      return labels;
    }
    case "member":
      return repo && payload.member?.login
        ? [
            {
              installation: inst,
              repo,
              kind: "permission",
              subject: payload.member.login.toLowerCase(),
            },
          ]
        : [];
    case "push": {
      if (!repo) return [];
      // Files may be read at any ref; the config is read from the default branch only. In every
      // installation: one whose config extends this repository's file (or its `.github`) reads
      // it too, and is told of no push to it. It had kept a base's wider settings for the TTL
      // after the push that narrowed them (found by a review).
      const evictions: EvictionScope[] = [{ installation: ANY_INSTALLATION, repo, kind: "file" }];
      const toDefaultBranch = payload.ref === `refs/heads/${payload.repository?.default_branch}`;
      if (toDefaultBranch && pushTouches(payload, REPO_CONFIG_PATH)) {
        evictions.push({ installation: ANY_INSTALLATION, repo, kind: "config" });
      }
      return evictions;
    }
    case "issues": {
      const number = payload.issue?.number;
      return repo && number !== undefined
        ? [{ installation: inst, repo, kind: "issue", subject: String(number) }]
        : [];
    }
    case "pull_request": {
      const number = payload.pull_request?.number ?? payload.number;
      if (!repo || number === undefined) return [];
      // A pull request is an issue too, and both endpoints describe it.
      return [
        { installation: inst, repo, kind: "pull", subject: String(number) },
        { installation: inst, repo, kind: "issue", subject: String(number) },
      ];
    }
    default:
      return [];
  }
}

function getPreviousName(payload: ChangePayload): string | undefined {
  const { repository, changes } = payload;
  const oldName = changes?.repository?.name?.from;
  if (oldName && repository?.owner?.login)
    return `${repository.owner.login}/${oldName}`.toLowerCase();
  const oldOwner = changes?.owner?.from?.user?.login ?? changes?.owner?.from?.organization?.login;
  if (oldOwner && repository?.name) return `${oldOwner}/${repository.name}`.toLowerCase();
  return undefined;
}

/**
 * Whether a push changed `path`. A push webhook lists at most 2048 commits, and none at all for
 * some pushes; when the list cannot be trusted (a force-push too), assume it did.
 */
function pushTouches(payload: ChangePayload, path: string): boolean {
  const commits = payload.commits ?? [];
  // A force-push lists only the commits new to the branch, not those it dropped from it.
  if (payload.forced || commits.length === 0 || commits.length >= 2048) return true;
  return commits.some((c) =>
    [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])].includes(path),
  );
}
