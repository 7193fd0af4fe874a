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

/**
 * A `link` header as GitHub writes it for `page` of `last` pages of acme/widgets' issues listing
 * sorted by `sort`.
 */
export function listingLinkOf(
  page: number,
  last: number,
  sort: "created" | "updated",
): Record<string, string> {
  const url = (n: number) =>
    `<https://api.github.com/repositories/2/issues?state=all&sort=${sort}&direction=desc&per_page=100&page=${n}>`;
  const links = [
    ...(page > 1 ? [`${url(page - 1)}; rel="prev"`] : []),
    ...(page < last ? [`${url(page + 1)}; rel="next"`, `${url(last)}; rel="last"`] : []),
    ...(page > 1 ? [`${url(1)}; rel="first"`] : []),
  ];
  return links.length > 0 ? { link: links.join(", ") } : {};
}
