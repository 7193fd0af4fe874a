/** An issue of acme/widgets as GitHub's issues listing gives it, `changes` over the defaults. */
export function listedIssue(number: number, changes: Record<string, unknown> = {}) {
  return {
    number,
    title: `Issue ${number}`,
    body: "",
    state: "open",
    user: { login: "octocat" },
    labels: [],
    html_url: `https://github.com/acme/widgets/issues/${number}`,
    created_at: "2026-10-01T00:00:00Z",
    ...changes,
  };
}
