/**
 * `<config-dir>/macos.toml`: where macOS downloads come from (mirrors on this machine, for
 * offline installs and tests) and extra chunklist keys. Read by macos-recovery and opencore.
 *
 * ```toml
 * [recovery]
 * server = "http://127.0.0.1:8080"   # speaks Apple's recovery protocol
 * keys = ["C3E7…"]                   # more RSA moduli (hex) chunklists may be signed with
 * ```
 *
 * `<config-dir>/opencore.json`, when present, replaces the built-in OpenCore catalogue (pinned
 * releases and their URLs, for a mirror).
 *
 * @module
 */
import { parse } from "smol-toml";
import { type BaseContext, stageError } from "../../workers/sdk.ts";

export interface MacosSettings {
  recovery: { server: string; keys: string[] };
}

/** The settings, with defaults for what the file does not say (or when there is no file). */
export async function macosSettings(ctx: BaseContext): Promise<MacosSettings> {
  const file = `${ctx.dirs.config}/macos.toml`;
  let raw: Record<string, Record<string, unknown>> = {};
  try {
    raw = parse(await ctx.host.readText(file)) as typeof raw;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw stageError(
        `Cannot read ${file}: ${error instanceof Error ? error.message : error}`,
        "Fix the file or remove it",
        "CONFIG_INVALID",
      );
    }
  }
  const server = raw.recovery?.server;
  const keys = raw.recovery?.keys;
  return {
    recovery: {
      server: typeof server === "string" ? server.replace(/\/$/, "") : APPLE_SERVER,
      keys: Array.isArray(keys) ? keys.map(String) : [],
    },
  };
}

/** Apple's recovery server, and the CDN its answers send the images from. */
export const APPLE_SERVER = "http://osrecovery.apple.com";
export const APPLE_CDN = "http://oscdn.apple.com";
