/**
 * compat-check: the plugin-authoring example. Its preflight refuses hosts whose
 * CPU information cannot be read; its stage writes a short report through the
 * kernel's `fs.mkdir` and `fs.write` ops (a plugin never writes files itself).
 *
 * @example
 * ```sh
 * deno task gini --plugin-dir plugins/examples --dry-run run compat-check:write-report
 * ```
 *
 * @module
 */
import { definePlugin } from "../../../workers/sdk.ts";

function virtualization(cpuinfo: string): "vmx" | "svm" | "none" {
  const flags = new Set(cpuinfo.match(/^flags\s*:(.*)$/m)?.[1]?.trim().split(/\s+/) ?? []);
  return flags.has("vmx") ? "vmx" : flags.has("svm") ? "svm" : "none";
}

export default definePlugin({
  async preflight(ctx) {
    try {
      const cpuinfo = await ctx.host.readText("/proc/cpuinfo");
      if (!/^flags\s*:/m.test(cpuinfo)) return "/proc/cpuinfo lists no CPU flags";
    } catch (error) {
      return `cannot read /proc/cpuinfo: ${error instanceof Error ? error.message : error}`;
    }
  },
  stages: {
    "write-report": async (ctx) => {
      const cpu = virtualization(await ctx.host.readText("/proc/cpuinfo"));
      const kernel = (await ctx.host.readText("/proc/sys/kernel/osrelease")).trim();
      if (cpu === "none") ctx.ui.warn("The CPU offers no vmx or svm: guests will run under TCG");
      const dir = `${ctx.dirs.data}/reports`;
      const path = `${dir}/compat.txt`;
      await ctx.op("fs.mkdir", { path: dir });
      await ctx.op("fs.write", {
        path,
        content: `kernel: ${kernel}\nvirtualization: ${cpu}\n`,
        overwrite: true,
      });
      if (!ctx.dryRun) ctx.ui.info(`Report written to ${path}`);
      ctx.set("compat.report", { path, virtualization: cpu, kernel });
    },
  },
});
