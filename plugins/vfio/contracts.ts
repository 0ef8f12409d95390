/**
 * The vfio plugin's context keys: the plan `configure` made and the status `status`
 * read.
 *
 * @module
 */
import { z } from "zod";

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
export type VfioPlan = z.infer<typeof VfioPlanSchema>;

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
export type VfioStatus = z.infer<typeof VfioStatusSchema>;

export const contracts = {
  "vfio.plan": VfioPlanSchema,
  "vfio.status": VfioStatusSchema,
};
