import { parentPort } from "node:worker_threads";
import { countSegmentWords, type SegmentTexts } from "./words-counter.js";

/** The worker thread behind `WordsWorker`: counts a segment's words, one request at a time. */
const port = parentPort;
if (!port) throw new Error("words-worker.js runs as a worker thread");
port.on(
  "message",
  ({ id, segmentSize, texts }: { id: number; segmentSize: number; texts: SegmentTexts }) => {
    try {
      port.postMessage({ id, bytes: countSegmentWords(segmentSize, texts) });
    } catch (error) {
      port.postMessage({ id, error: (error as Error).message });
    }
  },
);
