/**
 * Fixture distribution roots that the VFIO set-up can run its rebuild commands in, through
 * chroot: busybox as /bin/sh and a stand-in for each distribution's rebuild program.
 *
 * @module
 */
import { join } from "node:path";
import { REBUILD_PROGRAMS } from "../kernel/ops/argv.ts";
import { sh } from "./_helpers.ts";

/** Where the stand-ins log what they saw, relative to the root. */
export const REBUILD_LOG = "var/log/gini-rebuild.log";

/**
 * A copy of a fixture root that can be chrooted into: busybox as /bin/sh and, for each rebuild
 * program, a script that logs its arguments and whether Gini's modprobe.d file existed then.
 */
export async function chrootableRoot(source: string): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "gini-vfio-root-" });
  await sh("cp", "-a", `${source}/.`, root);
  await Deno.mkdir(join(root, "bin"), { recursive: true });
  await Deno.mkdir(join(root, "usr/sbin"), { recursive: true });
  await Deno.mkdir(join(root, "var/log"), { recursive: true });
  await Deno.copyFile("/bin/busybox", join(root, "bin/busybox"));
  await Deno.chmod(join(root, "bin/busybox"), 0o755);
  await Deno.symlink("busybox", join(root, "bin/sh"));
  for (const program of REBUILD_PROGRAMS) {
    const path = join(root, "usr/sbin", program);
    await Deno.writeTextFile(
      path,
      `#!/bin/sh\nif [ -e /etc/modprobe.d/gini-vfio.conf ]; then state=configured; else state=clean; fi\nargs="$*"; [ -n "$args" ] && args=" $args"\necho "${program}$args ($state)" >> /${REBUILD_LOG}\n`,
    );
    await Deno.chmod(path, 0o755);
  }
  return root;
}
