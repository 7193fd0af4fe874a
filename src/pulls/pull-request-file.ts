/**
 * A file of a pull request, as GitHub's `GET /repos/{owner}/{repo}/pulls/{n}/files` and the
 * compare API list it.
 * https://docs.github.com/en/rest/pulls/pulls#list-pull-requests-files
 */
export interface PullRequestFile {
  filename: string;
  status: "added" | "removed" | "modified" | "renamed" | "copied" | "changed" | "unchanged";
  additions: number;
  deletions: number;
  changes: number;
  /** Absent when GitHub omits the diff (a binary file, or one too large). */
  patch?: string | undefined;
  previous_filename?: string | undefined;
}
