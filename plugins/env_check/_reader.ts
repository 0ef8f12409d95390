/**
 * Tolerant reads of a host tree: a missing file is `undefined`, an unreadable or
 * malformed one becomes a warning, never an exception.
 *
 * @module
 */
import type { HostReader } from "../../workers/sdk.ts";

function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound ||
    (error instanceof Error && error.name === "NotFound");
}

/** Reads through a {@linkcode HostReader}, collecting warnings. */
export class TolerantReader {
  readonly warnings: string[] = [];
  readonly host: HostReader;

  constructor(host: HostReader) {
    this.host = host;
  }

  #warn(path: string, error: unknown): undefined {
    this.warnings.push(
      `Cannot read "${path}": ${
        error instanceof Error ? `${error.name}: ${error.message}` : error
      }`,
    );
    return undefined;
  }

  /** The file's text, or undefined when absent (a warning when `expected`). */
  async text(path: string, expected = false): Promise<string | undefined> {
    try {
      return await this.host.readText(path);
    } catch (error) {
      if (isNotFound(error)) {
        if (expected) this.warnings.push(`Cannot find "${path}"`);
        return undefined;
      }
      return this.#warn(path, error);
    }
  }

  /** A one-line attribute, trimmed. */
  async attr(path: string): Promise<string | undefined> {
    return (await this.text(path))?.trim();
  }

  /** Entry names, sorted; empty when absent. */
  async dir(path: string): Promise<string[]> {
    try {
      return await this.host.readDir(path);
    } catch (error) {
      if (isNotFound(error)) return [];
      this.#warn(path, error);
      return [];
    }
  }

  /** A symlink's target, or undefined. */
  async link(path: string): Promise<string | undefined> {
    try {
      return await this.host.readLink(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      return this.#warn(path, error);
    }
  }

  /** Whether the path exists (without following a final symlink). */
  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  async stat(path: string) {
    try {
      return await this.host.stat(path);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      return this.#warn(path, error);
    }
  }
}

/** The last component of a symlink target: `../../bus/pci/drivers/nvidia` → `nvidia`. */
export function basenameOf(target: string | undefined): string | null {
  if (!target) return null;
  return target.split("/").filter(Boolean).at(-1) ?? null;
}
