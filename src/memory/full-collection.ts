import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A full garbage collection of this thread's heap, for the memory registry to run once it has
 * closed idle stores. A store's int8 vectors live in a WebAssembly memory, outside V8's heap:
 * only a full collection frees it, and a process that makes little garbage (stores opened
 * from their words files rather than tokenizing every text) runs one rarely. The 40-repository
 * benchmark's peak RSS went from 970 MB without it to 639 MB with it, under a 512 MB cap, for
 * about 50 ms a closing.
 *
 * V8's `gc` is not exposed by default: the flag is set for the process, and only a context made
 * after it (this one) is given the function.
 */
export function createFullCollection(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}
