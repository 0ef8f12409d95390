/**
 * `gini version`: the versions of Gini, its kernel API, the worker protocol and Deno.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { KERNEL_API_VERSION } from "../kernel/plugins/manifest.ts";
import { PROTOCOL_VERSION } from "../workers/protocol.ts";
import type { Cli } from "./_env.ts";

/** Gini's version. */
export const VERSION = denoJson.version;

/** Registers `gini version`. */
export function registerVersion(cli: Cli): void {
  cli.program.command("version")
    .description("print versions of Gini, its kernel API and Deno")
    .action(cli.action(({ ui }) => {
      const data = {
        gini: VERSION,
        kernelApi: KERNEL_API_VERSION,
        protocol: PROTOCOL_VERSION,
        deno: Deno.version.deno,
      };
      ui.result(
        data,
        () =>
          `gini ${data.gini} (kernel API ${data.kernelApi}, protocol ${data.protocol}, deno ${data.deno})`,
      );
    }));
}
