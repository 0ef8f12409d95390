/**
 * custom-kexts: `add-kexts` lists the kext bundles in `<config-dir>/kexts/NAME`, checks each has
 * a `Contents/Info.plist`, finds its executable, and hands opencore:assemble the files to copy
 * and the Kernel.Add entries to enable (after the built-in kexts, in name order).
 *
 * @module
 */
import { join } from "../../workers/path.ts";
import { type BaseContext, definePlugin, stageError } from "../../workers/sdk.ts";
import { VM_CONFIG } from "../qemu_setup/keys.ts";
import { CUSTOM_KEXTS, type CustomKexts } from "./contracts.ts";

async function files(ctx: BaseContext, dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await ctx.host.readDir(dir)).sort()) {
    const path = join(dir, name);
    if ((await ctx.host.stat(path)).isDirectory) {
      out.push(...await files(ctx, path, `${prefix}${name}/`));
    } else out.push(`${prefix}${name}`);
  }
  return out;
}

export default definePlugin({
  stages: {
    async "add-kexts"(ctx) {
      const c = ctx.get(VM_CONFIG)!;
      if (!ctx.get("opencore.config") || !c.macos?.kexts) {
        return ctx.set(CUSTOM_KEXTS, { kexts: [], copies: [] });
      }
      const dir = join(ctx.dirs.config, "kexts", c.macos.kexts);
      let names: string[];
      try {
        names = (await ctx.host.readDir(dir)).filter((n) => n.endsWith(".kext")).sort();
      } catch {
        throw stageError(
          `Cannot read the kexts folder "${dir}"`,
          "Create it and put your .kext bundles in it, or remove [macos] kexts",
          "CONFIG_INVALID",
        );
      }
      const kexts: CustomKexts["kexts"] = [];
      const copies: CustomKexts["copies"] = [];
      for (const bundle of names) {
        const all = await files(ctx, join(dir, bundle));
        if (!all.includes("Contents/Info.plist")) {
          throw stageError(
            `Cannot add "${bundle}": it has no Contents/Info.plist`,
            `Is ${join(dir, bundle)} a complete kext bundle?`,
            "CONFIG_INVALID",
          );
        }
        const executable = all.find((f) => f.startsWith("Contents/MacOS/")) ?? "";
        kexts.push({ bundle, executable, comment: `${bundle} (yours)` });
        for (const f of all) {
          copies.push({ from: join(dir, bundle, f), to: `EFI/OC/Kexts/${bundle}/${f}` });
        }
        ctx.ui.info(`Adding your kext ${bundle}`);
      }
      ctx.set(CUSTOM_KEXTS, { kexts, copies });
    },
  },
});
