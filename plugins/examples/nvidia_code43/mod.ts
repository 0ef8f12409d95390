/**
 * nvidia-code43: the lifecycle-hook example. `on_pre_vm_start` receives the VM
 * definition before anything is generated from it and replies with a JSON merge
 * patch of `hypervisor` only, which every subscriber may change, so its manifest needs no
 * `[events] vm_patch` grant; qemu-setup checks it, applies it and validates the result
 * again. The `code43` command comes from `[[commands]]` in the manifest (register_commands).
 *
 * @example
 * ```sh
 * deno task gini --plugin-dir plugins/examples plan examples/passthrough.toml
 * deno task gini --plugin-dir plugins/examples code43
 * ```
 *
 * @module
 */
import { definePlugin } from "../../../workers/sdk.ts";
import { ENVIRONMENT_DATA } from "../../env_check/contracts.ts";

/** At most 12 characters; any value other than KVM's own works. */
const VENDOR_ID = "GiniVfio0001";
const NVIDIA = "10de";

/** What this plugin reads of the VM definition the event carries. */
type Definition = {
  name: string;
  passthrough: { address: string; vendor: string }[];
};

export default definePlugin({
  on: {
    on_pre_vm_start(payload, ctx) {
      const def = (payload as { definition: Definition }).definition;
      const nvidia = def.passthrough.filter((d) => d.vendor === NVIDIA);
      if (nvidia.length === 0) return;
      ctx.ui.info(
        `VM "${def.name}" passes through NVIDIA ${
          nvidia.map((d) => d.address).join(", ")
        }: hiding KVM (Code 43 workaround)`,
      );
      return { patch: { hypervisor: { kvmHidden: true, hypervVendorId: VENDOR_ID } } };
    },
  },
  stages: {
    report(ctx) {
      const gpus = ctx.get(ENVIRONMENT_DATA)!.gpus.filter((g) => g.vendor === NVIDIA);
      ctx.set(
        "nvidia_code43.report",
        gpus.length === 0
          ? "No NVIDIA GPU on this host: nothing to do"
          : gpus.map((g) =>
            `${g.address} ${g.name} (${
              g.driver ?? "no driver"
            }): VMs passing it through get kvm=off and hv-vendor-id=${VENDOR_ID}`
          ).join("\n"),
      );
    },
  },
});
