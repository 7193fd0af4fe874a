// vectra's type declarations name an optional dependency Talos does not install (vectra uses it
// to embed locally with Transformers.js). Declaring the names they use keeps skipLibCheck off.
declare module "@huggingface/transformers" {
  export type PreTrainedTokenizer = unknown;
}
