/**
 * The SDK's TOML helpers, apart from `sdk.ts` because they load a TOML parser (smol-toml, ten
 * modules): a plugin that reads no TOML file, as most do, starts without it.
 *
 * @example
 * ```ts
 * import { locateKey } from "./sdk_toml.ts";
 *
 * const where = locateKey('name = "web"\n[memory]\nsize = "2G"\n', ["memory", "size"]);
 * ```
 *
 * @module
 */

/** TOML checked against a zod schema, with errors that point into the file. */
export { locateKey, parseTomlFile, schemaKeysAt } from "../kernel/toml.ts";
