/**
 * linux-setup: for VM files with a `[linux]` table, writes the cloud-init NoCloud
 * seed (meta-data, user-data, network-config) into a `cidata` ISO kept beside the
 * VM, and resolves the base image: a catalogue name (downloaded and verified into
 * the cache), a local file, or a URL. For other VMs its stages do nothing.
 *
 * @module
 */
import { basename, isAbsolute, join, resolve } from "../../workers/path.ts";
import { parse as parseYaml } from "yaml";
import {
  type ContextKey,
  definePlugin,
  type StageContext,
  USER_VM_REQUEST,
} from "../../workers/sdk.ts";
import { type LinuxConfig, parseVmConfig } from "../qemu_setup/vm_schema.ts";
import { vmMac, vmUuid } from "../qemu_setup/names.ts";
import { ENVIRONMENT_DATA } from "../env_check/contracts.ts";
import {
  instanceId,
  metaData,
  networkConfig,
  type RequestDefaults,
  userData,
} from "./_cloud_init.ts";
import { CATALOGUE, findChecksum } from "./catalogue.ts";
import { GUEST_BASE_IMAGE, GUEST_SEED } from "./contracts.ts";
import {
  imagesListCommand,
  imagesPullCommand,
  listImages,
  PULL_COMMAND,
  PULLED,
} from "./commands.ts";

/** What the stages need of the VM file and the request. */
type SetupConfig = {
  name: string;
  /** The first NIC's MAC (as qemu-setup derives it), or null without networking. */
  mac: string | null;
  uuid: string;
  dir: string;
  file: string;
  linux: LinuxConfig | null;
  defaults: RequestDefaults;
};

const CONFIG: ContextKey<SetupConfig> = "linux_setup.config";
/** The seed's files: meta-data, user-data and network-config (null for a VM without [linux]). */
const META_DATA: ContextKey<string | null> = "linux_setup.meta_data";
const USER_DATA: ContextKey<string | null> = "linux_setup.user_data";
const NETWORK_CONFIG: ContextKey<string | null> = "linux_setup.network_config";

const config = (ctx: StageContext) => ctx.get(CONFIG)!;

/** The seed's three files, checked to be YAML cloud-init will read. */
function checkYaml(name: string, text: string): void {
  try {
    parseYaml(text);
  } catch (error) {
    throw new Error(
      `Generated ${name} is not valid YAML: ${error instanceof Error ? error.message : error}`,
    );
  }
}

async function resolveImage(ctx: StageContext, c: Pick<SetupConfig, "file">, image: string) {
  const entry = CATALOGUE[image];
  if (entry) {
    const sums = await ctx.op<{ path: string }>("download", {
      url: entry.checksumUrl,
      label: `Checksums for ${image}`,
    });
    const text = ctx.dryRun ? "" : await Deno.readTextFile(sums.path);
    const expected = findChecksum(text, basename(new URL(entry.url).pathname));
    if (!ctx.dryRun && !expected) {
      throw Object.assign(
        new Error(
          `Cannot verify "${image}": ${entry.checksumUrl} lists no checksum for ${
            basename(entry.url)
          }`,
        ),
        {
          hint:
            'The catalogue entry may be outdated; use a local image with [linux] image = "/path/to.qcow2"',
        },
      );
    }
    const got = await ctx.op<{ path: string }>("download", {
      url: entry.url,
      label: `Downloading ${image}`,
      sizeBytes: entry.approxBytes,
      sizeApproximate: true,
      ...(expected ? { checksum: { algorithm: entry.algorithm, value: expected } } : {}),
    });
    return {
      path: ctx.dryRun ? `${ctx.dirs.cache}/downloads/${image}` : got.path,
      format: entry.format,
      source: entry.url,
    };
  }
  if (/^https?:\/\//.test(image)) {
    const got = await ctx.op<{ path: string }>("download", { url: image });
    return {
      path: ctx.dryRun ? `${ctx.dirs.cache}/downloads/${basename(image)}` : got.path,
      format: "qcow2",
      source: image,
    };
  }
  const path = image.startsWith("file://")
    ? new URL(image).pathname
    : isAbsolute(image)
    ? image
    : resolve(c.file, "..", image);
  return { path, format: null, source: path };
}

/** The user's own cloud-config, checked: the #cloud-config header and a YAML mapping. */
async function readUserCloudConfig(
  ctx: StageContext,
  c: SetupConfig,
  file: string,
): Promise<string> {
  const path = isAbsolute(file) ? file : resolve(c.file, "..", file);
  const bad = (why: string, hint: string) =>
    Object.assign(new Error(`Cannot use user_data "${file}": ${why}`), {
      code: "CONFIG_INVALID",
      hint,
      location: { file: c.file, key: "linux.user_data" },
    });
  let text: string;
  try {
    text = (await ctx.op<{ text: string }>("file.read", { path })).text;
  } catch (error) {
    throw bad(
      error instanceof Error ? error.message : String(error),
      "Put the file next to the VM file and check its name",
    );
  }
  if (!text.startsWith("#cloud-config")) {
    throw bad(
      "its first line is not #cloud-config",
      "cloud-init ignores user-data without that header: add it as the first line",
    );
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw bad(
      `it is not valid YAML: ${error instanceof Error ? error.message.split("\n")[0] : error}`,
      "Fix the YAML (yamllint shows where)",
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw bad(
      "it is not a YAML mapping of cloud-config keys",
      "Start it with keys such as users:, packages:, runcmd:",
    );
  }
  return text;
}

/** The timestamp of every date in a seed ISO made with xorriso (2000-01-01T00:00:00Z). */
const SEED_EPOCH = 946684800;

export default definePlugin({
  stages: {
    "load-config-toml": async (ctx) => {
      const request = ctx.get(USER_VM_REQUEST)!;
      const vm = parseVmConfig(request.text, request.file);
      const setup: SetupConfig = {
        name: vm.name,
        mac: vm.network[0] && vm.network[0].type !== "none"
          ? vm.network[0].mac?.toLowerCase() ?? await vmMac(vm.name, 0)
          : null,
        uuid: await vmUuid(vm.name),
        dir: join(ctx.dirs.data, "vms", vm.name),
        file: request.file,
        linux: vm.linux ?? null,
        defaults: request.defaults ?? {},
      };
      ctx.set(CONFIG, setup);
    },
    "generate-cloud-init-meta": (ctx) => {
      const c = config(ctx);
      if (!c.linux) return ctx.set(META_DATA, null);
      const text = metaData(c.name, instanceId(c.name, c.uuid, c.linux), c.linux);
      checkYaml("meta-data", text);
      ctx.set(META_DATA, text);
    },
    "generate-cloud-init-user": async (ctx) => {
      const c = config(ctx);
      if (!c.linux) return ctx.set(USER_DATA, null);
      if (c.linux.user_data) {
        ctx.set(USER_DATA, await readUserCloudConfig(ctx, c, c.linux.user_data));
        return;
      }
      const text = userData(c.name, c.linux, c.defaults);
      checkYaml("user-data", text);
      if (
        !(c.linux.ssh_authorized_keys ?? c.defaults.sshKeys ?? []).length && !c.linux.password_hash
      ) {
        ctx.ui.warn(
          `"${c.name}" gets no SSH key and no password, so nobody can log in to it: make a key with "ssh-keygen -t ed25519" (Gini adds your ~/.ssh/*.pub), or set ssh_authorized_keys or password_hash in [linux] of ${c.file}`,
        );
      }
      ctx.set(USER_DATA, text);
    },
    "generate-network-config": (ctx) => {
      const c = config(ctx);
      if (!c.linux) return ctx.set(NETWORK_CONFIG, null);
      const text = networkConfig(c.linux, c.mac);
      checkYaml("network-config", text);
      ctx.set(NETWORK_CONFIG, text);
    },
    "assemble-cloud-init-iso": async (ctx) => {
      const c = config(ctx);
      if (!c.linux) return ctx.set(GUEST_SEED, null);
      const host = ctx.get(ENVIRONMENT_DATA)!;
      const seedDir = join(c.dir, "cidata");
      await ctx.op("fs.mkdir", { path: seedDir });
      const files: [string, string][] = [
        ["meta-data", ctx.get(META_DATA)!],
        ["user-data", ctx.get(USER_DATA)!],
        ["network-config", ctx.get(NETWORK_CONFIG)!],
      ];
      for (const [name, content] of files) {
        await ctx.op("fs.write", { path: join(seedDir, name), content, overwrite: true });
      }
      const iso = join(c.dir, "seed.iso");
      const useGenisoimage = !host.programs.xorriso && host.programs.genisoimage;
      const paths = files.map(([name]) => join(seedDir, name));
      // xorriso's mkisofs emulation takes genisoimage's arguments.
      const mkisofs = useGenisoimage ? ["genisoimage"] : ["xorriso", "-as", "mkisofs"];
      const argv = [
        ...mkisofs,
        "-quiet",
        "-output",
        iso,
        "-volid",
        "cidata",
        "-joliet",
        "-rock",
        // Reproducible: the same VM file gives the same bytes (a resumed deploy, journal verify).
        ...(useGenisoimage ? [] : ["--set_all_file_dates", `=${SEED_EPOCH}`]),
        ...paths,
      ];
      await ctx.op("fs.remove", { path: iso, missingOk: true });
      await ctx.op("run", {
        argv,
        creates: [iso],
        timeoutMs: 60_000,
        ...(useGenisoimage ? {} : { env: { SOURCE_DATE_EPOCH: String(SEED_EPOCH) } }),
      });
      ctx.set(GUEST_SEED, { path: iso });
    },
    "pull-image": async (ctx) => {
      const { args: { name }, cwd } = ctx.get(PULL_COMMAND)!;
      const image = await resolveImage(ctx, { file: join(cwd, "request") }, name);
      ctx.set(PULLED, { name, path: image.path, source: image.source });
    },
    "prepare-base-disk": async (ctx) => {
      const c = config(ctx);
      if (!c.linux?.image) return ctx.set(GUEST_BASE_IMAGE, null);
      const image = await resolveImage(ctx, c, c.linux.image);
      let format = image.format;
      let virtualSize: number | null = null;
      if (!ctx.dryRun || image.format === null) {
        const info = await ctx.op<{ code: number; stdout: string }>("run", {
          argv: ["qemu-img", "info", "--output=json", "-U", image.path],
          allowFailure: true,
        });
        if (info.code !== 0) {
          throw Object.assign(
            new Error(
              `Cannot use image "${c.linux.image}": "${image.path}" does not exist or is not a disk image`,
            ),
            {
              code: "CONFIG_INVALID",
              hint: `Use a catalogue name (${
                Object.keys(CATALOGUE).join(", ")
              }), or check the path`,
              location: { file: c.file, key: "linux.image" },
            },
          );
        }
        const parsed = JSON.parse(info.stdout) as { format: string; "virtual-size": number };
        format = parsed.format as "qcow2" | "raw";
        virtualSize = parsed["virtual-size"];
      }
      ctx.set(GUEST_BASE_IMAGE, {
        path: image.path,
        format: format ?? "qcow2",
        virtualSize,
        source: image.source,
      });
    },
    "list-images": listImages,
  },
  commands: { "images list": imagesListCommand, "images pull": imagesPullCommand },
});
