/** Turns text into vectors. An interface at the I/O boundary, so tests use a fake. */
export interface Embedder {
  /** Recorded in the index: memories embedded by another model cannot be compared. */
  readonly model: string;
  readonly dimension: number;
  /** A cosine similarity above which this model's vectors usually mean related texts. */
  readonly relatedScore: number;
  embed(texts: string[]): Promise<Float32Array[]>;
}

/** Two embedders' vectors are comparable only when both model and dimension agree. */
export function describeEmbedder(embedder: Pick<Embedder, "model" | "dimension">): string {
  return `${embedder.model} (${embedder.dimension} dimensions)`;
}
