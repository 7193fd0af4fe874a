export async function runGitHubBench(_: { json: boolean }) { throw new Error("not yet"); }
