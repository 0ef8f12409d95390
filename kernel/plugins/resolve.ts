/**
 * Resolves a set of manifests into a load order: dependencies by semver range,
 * priorities, and every problem (missing dependency, version conflict, cycle,
 * duplicate names, two producers of one context key, unknown `after`) reported
 * together, before any worker starts.
 *
 * @module
 */
import { satisfies } from "./ranges.ts";
import { didYouMean, type GiniError, ManifestError, PluginResolutionError } from "../errors.ts";
import type { Manifest } from "./manifest.ts";

/** A stage with its full id and owner. */
export interface ResolvedStage {
  id: string;
  plugin: string;
  name: string;
  after: string[];
  reads: string[];
  writes: string[];
  timeoutMs: number;
  /** When it applies to a VM file (its manifest's `when`); always when absent. */
  when?: { tables?: string[] | undefined; guests?: string[] | undefined };
}

/** The outcome of resolution. */
export interface Resolution {
  /** Plugins in load order: priority, then dependencies first. */
  plugins: Manifest[];
  stages: Map<string, ResolvedStage>;
  /** Context key → producing stage id. */
  producers: Map<string, string>;
  /** Optional plugins left out, and why. */
  skipped: { plugin: string; reason: string }[];
}

function problemsOf(manifests: Manifest[]): Map<string, GiniError[]> {
  const problems = new Map<string, GiniError[]>();
  const add = (plugin: string, error: GiniError) =>
    problems.set(plugin, [...(problems.get(plugin) ?? []), error]);
  const byName = new Map<string, Manifest>();
  for (const m of manifests) {
    const existing = byName.get(m.plugin.name);
    if (existing) {
      add(
        m.plugin.name,
        new ManifestError(
          `Cannot load two plugins named "${m.plugin.name}": also defined in ${existing.file}`,
          {
            location: { file: m.file, key: "plugin.name" },
            hint: "Remove or rename one of them",
          },
        ),
      );
      continue;
    }
    byName.set(m.plugin.name, m);
  }
  for (const m of byName.values()) {
    const deps = [
      ...Object.entries(m.dependencies).map(([n, r]) => [n, r, false] as const),
      ...Object.entries(m.optional_dependencies).map(([n, r]) => [n, r, true] as const),
    ];
    for (const [name, range, optional] of deps) {
      const dep = byName.get(name);
      const table = optional ? "optional_dependencies" : "dependencies";
      if (!dep) {
        if (optional) continue;
        add(
          m.plugin.name,
          new ManifestError(
            `Cannot load plugin "${m.plugin.name}": it depends on "${name}", which is not installed`,
            {
              location: { file: m.file, key: `${table}.${name}` },
              hint: didYouMean(name, byName.keys()) ??
                `Install "${name}" ${range}, or remove the dependency`,
            },
          ),
        );
      } else if (!satisfies(dep.plugin.version, range)) {
        add(
          m.plugin.name,
          new ManifestError(
            `Cannot load plugin "${m.plugin.name}": it needs "${name}" ${range}, but ${dep.plugin.version} is installed`,
            {
              location: { file: m.file, key: `${table}.${name}` },
              hint: `Install a version of "${name}" matching ${range}`,
            },
          ),
        );
      }
    }
  }
  return problems;
}

function findCycles(manifests: Manifest[]): string[][] {
  const names = new Set(manifests.map((m) => m.plugin.name));
  const edges = new Map(
    manifests.map((m) => [
      m.plugin.name,
      [...Object.keys(m.dependencies), ...Object.keys(m.optional_dependencies)].filter((d) =>
        names.has(d)
      ),
    ]),
  );
  const cycles: string[][] = [];
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (name: string) => {
    state.set(name, "visiting");
    stack.push(name);
    for (const next of edges.get(name) ?? []) {
      if (state.get(next) === "visiting") cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(name, "done");
  };
  for (const name of [...names].sort()) if (!state.has(name)) visit(name);
  return cycles;
}

/** Orders plugins: among those whose dependencies are placed, the lowest priority value first. */
function order(manifests: Manifest[]): Manifest[] {
  const byName = new Map(manifests.map((m) => [m.plugin.name, m]));
  const placed = new Set<string>();
  const result: Manifest[] = [];
  const remaining = new Set(byName.keys());
  while (remaining.size) {
    const ready = [...remaining]
      .map((n) => byName.get(n)!)
      .filter((m) =>
        [...Object.keys(m.dependencies), ...Object.keys(m.optional_dependencies)]
          .every((d) => placed.has(d) || !byName.has(d))
      )
      .sort((a, b) =>
        a.plugin.priority.value - b.plugin.priority.value ||
        a.plugin.name.localeCompare(b.plugin.name)
      );
    const next = ready[0];
    if (!next) break; // cycles are reported before ordering
    placed.add(next.plugin.name);
    remaining.delete(next.plugin.name);
    result.push(next);
  }
  return result;
}

/**
 * Drops failing plugins until the rest is stable: optional ones into `skipped`, required ones'
 * problems into `fatal`. Returns the plugins left.
 */
function dropFailing(
  manifests: Manifest[],
  skipped: Resolution["skipped"],
  fatal: GiniError[],
): Manifest[] {
  let rest = manifests;
  for (;;) {
    const problems = problemsOf(rest);
    if (problems.size === 0) break;
    const bad = new Set(problems.keys());
    for (const [plugin, errors] of problems) {
      const m = rest.find((x) => x.plugin.name === plugin);
      if (m?.plugin.optional) {
        skipped.push({
          plugin,
          reason: errors.map((e) => e.message).join("; "),
        });
      } else fatal.push(...errors);
    }
    rest = rest.filter((m) => !bad.has(m.plugin.name));
    if (rest.length === 0) break;
  }
  return rest;
}

/** One error per dependency cycle, pointing at its first plugin's manifest. */
function cycleErrors(manifests: Manifest[]): GiniError[] {
  return findCycles(manifests).map((cycle) => {
    const first = manifests.find((m) => m.plugin.name === cycle[0])!;
    return new ManifestError(
      `Cannot order plugins: their dependencies form a cycle ${cycle.join(" → ")}`,
      {
        location: { file: first.file, key: "dependencies" },
        hint: "Make one of these dependencies optional or remove it",
      },
    );
  });
}

/** Every stage by id, and the producer of each context key; a second producer goes to `fatal`. */
function collectStages(
  manifests: Manifest[],
  fatal: GiniError[],
): Pick<Resolution, "stages" | "producers"> {
  const stages = new Map<string, ResolvedStage>();
  const producers = new Map<string, string>();
  for (const m of manifests) {
    for (const [i, s] of m.stages.entries()) {
      const id = `${m.plugin.name}:${s.name}`;
      stages.set(id, {
        id,
        plugin: m.plugin.name,
        name: s.name,
        after: s.after,
        reads: s.reads,
        writes: s.writes,
        timeoutMs: s.timeout_ms ?? m.plugin.timeout_ms,
        ...(s.when ? { when: s.when } : {}),
      });
      for (const key of s.writes) {
        const other = producers.get(key);
        if (other) {
          fatal.push(
            new ManifestError(
              `Cannot let stage "${id}" write context key "${key}": stage "${other}" already produces it`,
              {
                location: { file: m.file, key: `stages.${i}.writes` },
                hint: "A context key has one producer: read it instead, or use a key of your own",
              },
            ),
          );
        } else producers.set(key, id);
      }
    }
  }
  return { stages, producers };
}

/** An `after` naming no stage, unless it belongs to an optional dependency that is absent. */
function unknownAfterErrors(
  manifests: Manifest[],
  stages: Map<string, ResolvedStage>,
): GiniError[] {
  const errors: GiniError[] = [];
  const present = new Set(manifests.map((m) => m.plugin.name));
  for (const m of manifests) {
    for (const [i, s] of m.stages.entries()) {
      for (const dep of s.after) {
        if (stages.has(dep)) continue;
        const owner = dep.split(":")[0]!;
        if (!present.has(owner) && owner in m.optional_dependencies) continue;
        errors.push(
          new ManifestError(
            `Cannot run stage "${m.plugin.name}:${s.name}" after "${dep}": no such stage`,
            {
              location: { file: m.file, key: `stages.${i}.after` },
              hint: didYouMean(dep, stages.keys()) ?? 'Name a stage as "plugin:stage"',
            },
          ),
        );
      }
    }
  }
  return errors;
}

/**
 * Resolves manifests, or throws {@linkcode PluginResolutionError} listing every problem.
 * Optional plugins (`optional = true`) with problems are skipped instead, as are their dependents.
 */
export function resolvePlugins(all: Manifest[], earlier: GiniError[] = []): Resolution {
  const skipped: Resolution["skipped"] = [];
  const enabled = all.filter((m) => {
    if (!m.plugin.enabled) {
      skipped.push({ plugin: m.plugin.name, reason: "disabled in its manifest" });
    }
    return m.plugin.enabled;
  });
  const fatal: GiniError[] = [...earlier];
  const manifests = dropFailing(enabled, skipped, fatal);
  fatal.push(...cycleErrors(manifests));
  const { stages, producers } = collectStages(manifests, fatal);
  fatal.push(...unknownAfterErrors(manifests, stages));
  if (fatal.length) throw new PluginResolutionError(fatal);
  return { plugins: order(manifests), stages, producers, skipped };
}
