/**
 * The vfio plugin's context keys: the plan `configure` made and the status `status`
 * read.
 *
 * @module
 */
import { z } from "zod";
import type { ContextKey, Plain } from "../../workers/sdk.ts";

const Device = z.object({
  address: z.string(),
  vendor: z.string(),
  device: z.string(),
  class: z.string(),
  driver: z.string().nullable(),
  iommuGroup: z.number().int().nullable(),
  name: z.string(),
  reason: z.enum(["listed", "same group", "same slot"]),
});

export const VfioPlanSchema = z.object({
  devices: z.array(Device),
  ids: z.array(z.string()),
  groups: z.array(z.number().int()),
  kernelArgs: z.array(z.string()),
  initramfs: z.string(),
  bootloader: z.string(),
  files: z.array(z.string()),
  commands: z.array(z.array(z.string())),
  bindNow: z.array(z.string()),
  notes: z.array(z.string()),
  warnings: z.array(z.string()),
});
export type VfioPlan = Plain<z.infer<typeof VfioPlanSchema>>;

export const VfioStatusSchema = z.object({
  bound: z.array(z.object({ address: z.string(), name: z.string() })),
  configured: z.object({
    ids: z.array(z.string()),
    kernelArgs: z.array(z.string()),
    modprobeFile: z.string().nullable(),
    initramfs: z.string().nullable(),
    bootloader: z.string().nullable(),
  }),
  running: z.object({ kernelArgs: z.array(z.string()) }),
  rebootPending: z.boolean(),
  notes: z.array(z.string()),
});
export type VfioStatus = Plain<z.infer<typeof VfioStatusSchema>>;

/** `vfio.plan`: what `configure` changed or, in a dry run (`gini vfio plan`), would change. */
export const VFIO_PLAN: ContextKey<VfioPlan> = "vfio.plan";
/** `vfio.status`: what `status` found bound, configured and running. */
export const VFIO_STATUS: ContextKey<VfioStatus> = "vfio.status";

export const contracts = {
  [VFIO_PLAN]: VfioPlanSchema,
  [VFIO_STATUS]: VfioStatusSchema,
};
