// A process that takes a memory directory's lock, prints `locked`, and holds it until killed.
// Used by the lock test: tsx lock-holder-child.ts <directory>
import { lockDirectory } from "../../src/memory/directory-lock.js";

const [directory] = process.argv.slice(2);
if (!directory) throw new Error("usage: lock-holder-child.ts <directory>");
await lockDirectory(directory);
process.stdout.write("locked\n");
setInterval(() => undefined, 60_000);
