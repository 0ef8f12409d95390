/**
 * Context-key contracts: each key has one producer, which owns its zod schema.
 * Core plugins export `contracts` from the module named by `[context].schemas`;
 * other plugins name a JSON Schema file there instead.
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import type { z } from "zod";
import { ManifestError } from "../errors.ts";
import type { Manifest } from "../plugins/manifest.ts";
import { toFileUrl } from "../url.ts";

/** Schemas by context key. */
export type Contracts = Map<string, z.ZodType>;

/** Loads the schemas the given producers declare. */
export async function loadContracts(manifests: Manifest[]): Promise<Contracts> {
  const contracts: Contracts = new Map();
  for (const m of manifests) {
    const file = m.context.schemas;
    if (!file) continue;
    const path = join(m.dir, file);
    let schemas: Record<string, unknown>;
    if (file.endsWith(".json")) {
      const text = m.bundle ? m.bundle.files[file] ?? "{}" : await Deno.readTextFile(path);
      const doc = JSON.parse(text) as Record<string, unknown>;
      // zod is loaded only for a plugin that gives JSON Schemas (core plugins' modules load it).
      const { z } = await import("zod");
      schemas = Object.fromEntries(
        Object.entries(doc).map(([key, schema]) => [key, z.fromJSONSchema(schema as never)]),
      );
    } else if (m.origin === "core") {
      const module = await import(toFileUrl(path).href) as { contracts?: Record<string, unknown> };
      schemas = module.contracts ?? {};
    } else {
      throw new ManifestError(`Cannot load "${file}": only core plugins may give schemas as code`, {
        location: { file: m.file, key: "context.schemas" },
        hint: "Give a JSON Schema file (keys are context keys, values JSON Schemas)",
      });
    }
    const written = new Set(m.stages.flatMap((s) => s.writes));
    for (const [key, schema] of Object.entries(schemas)) {
      if (!written.has(key)) {
        throw new ManifestError(
          `Cannot define a schema for "${key}": no stage of "${m.plugin.name}" writes it`,
          {
            location: { file: m.file, key: "context.schemas" },
            hint: "Only the producer of a key owns its schema",
          },
        );
      }
      contracts.set(key, schema as z.ZodType);
    }
  }
  return contracts;
}
