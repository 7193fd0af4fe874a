import type { RepoRef } from "../github/octokit.js";

const REPO = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/;

/**
 * `owner/repo` from the command line, or undefined. `.` and `..` are no names GitHub gives: in
 * a request path they climb out of `/repos/{owner}/{repo}` (`../..` reads the API's root).
 */
export function parseRepoName(value: string): RepoRef | undefined {
  const match = REPO.exec(value);
  if (!match) return undefined;
  const [owner, repo] = [match[1]!, match[2]!];
  if ([owner, repo].some((part) => part === "." || part === "..")) return undefined;
  return { owner, repo };
}
