/**
 * The kernel's hashing thread for downloads: it hashes the buffers the download op posts (shared
 * memory, not copies) while the op's own thread goes on reading the network and writing the disk.
 * First message: the algorithms; then one buffer per message, each answered with "ok"; then
 * `{ digest: true }`, answered with the hex digests by algorithm. No plugin code runs here.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** The worker's global scope, as much of it as this uses. */
const scope = globalThis as unknown as {
  onmessage: (event: MessageEvent) => void;
  postMessage: (message: unknown) => void;
};

let hashes: Map<string, Hash> | undefined;

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as string[] | Uint8Array | { digest: true };
  if (Array.isArray(message)) {
    hashes = new Map(message.map((algorithm) => [algorithm, createHash(algorithm)]));
  } else if (message instanceof Uint8Array) {
    for (const hash of hashes!.values()) hash.update(message);
    scope.postMessage("ok");
  } else {
    scope.postMessage(Object.fromEntries([...hashes!].map(([name, h]) => [name, h.digest("hex")])));
  }
};
