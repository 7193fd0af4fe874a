/**
 * @deprecated Nothing reads it: every store keeps its own keyword index (bm25-index.ts), and
 * vectra's private BM25 members are no longer used. It remains only because the test helpers
 * and the memory benchmark still pass one to `VectraMemoryStore.open`; delete it with them.
 */
export class KeywordReranker {}
