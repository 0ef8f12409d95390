/**
 * OpenCore's config.plist for a VM, as a plain object (data values as `{ $data: hex }`, turned
 * into `<data>` when written). Kernel.Add lists exactly the kexts in the tree (load order:
 * Lilu first), UEFI.Drivers exactly the drivers, Misc.Tools exactly the tools.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import plist from "plist";
import type { MacIdentity } from "./_smbios.ts";

/** A kext in EFI/OC/Kexts. */
export interface KextEntry {
  bundle: string;
  /** "Contents/MacOS/Name", or "" for a plist-only kext. */
  executable: string;
  comment: string;
}

/** What the config is made from. */
export interface ConfigInput {
  identity: MacIdentity;
  kexts: KextEntry[];
  drivers: string[];
  tools: string[];
  bootArgs: string;
  resolution: string;
  secureBootModel: "Disabled" | "Default";
  showPicker: boolean;
  timeout: number;
}

type PlistValue =
  | string
  | number
  | boolean
  | { $data: string }
  | PlistValue[]
  | { [key: string]: PlistValue };

const data = (hex: string) => ({ $data: hex });
const APPLE_BOOT = "7C436110-AB2A-4BBB-A880-FE41995C9F82";
const APPLE_NVRAM = "4D1EDE05-38C7-4A6A-9CC6-4BCCA8B38C14";

/** A Kernel.Add entry that loads and enables a kext. */
export function kernelAdd(k: KextEntry): PlistValue {
  return {
    Arch: "x86_64",
    BundlePath: k.bundle,
    Comment: k.comment,
    Enabled: true,
    ExecutablePath: k.executable,
    MaxKernel: "",
    MinKernel: "",
    PlistPath: "Contents/Info.plist",
  };
}

/** The config.plist object. */
export function buildConfig(input: ConfigInput): Record<string, PlistValue> {
  const id = input.identity;
  return {
    ACPI: {
      Add: [],
      Delete: [],
      Patch: [],
      Quirks: {
        FadtEnableReset: false,
        NormalizeHeaders: false,
        RebaseRegions: false,
        ResetHwSig: false,
        ResetLogoStatus: true,
        SyncTableIds: false,
      },
    },
    Booter: {
      MmioWhitelist: [],
      Patch: [],
      Quirks: {
        AvoidRuntimeDefrag: true,
        DevirtualiseMmio: false,
        EnableSafeModeSlide: true,
        EnableWriteUnprotector: true,
        ProvideCustomSlide: true,
        RebuildAppleMemoryMap: false,
        SetupVirtualMap: true,
        SyncRuntimePermissions: false,
      },
    },
    DeviceProperties: { Add: {}, Delete: {} },
    Kernel: {
      Add: input.kexts.map(kernelAdd),
      Block: [],
      Emulate: {
        Cpuid1Data: data(""),
        Cpuid1Mask: data(""),
        DummyPowerManagement: true,
        MaxKernel: "",
        MinKernel: "",
      },
      Force: [],
      Patch: [],
      Quirks: {
        AppleCpuPmCfgLock: false,
        AppleXcpmCfgLock: false,
        DisableIoMapper: true,
        DisableLinkeditJettison: true,
        PanicNoKextDump: true,
        PowerTimeoutKernelPanic: true,
        ProvideCurrentCpuInfo: true,
        XhciPortLimit: false,
      },
      Scheme: { FuzzyMatch: true, KernelArch: "x86_64", KernelCache: "Auto" },
    },
    Misc: {
      BlessOverride: [],
      Boot: {
        HibernateMode: "None",
        HideAuxiliary: true,
        LauncherOption: "Disabled",
        LauncherPath: "Default",
        PickerAttributes: 17,
        PickerAudioAssist: false,
        PickerMode: "Builtin",
        PickerVariant: "Auto",
        PollAppleHotKeys: true,
        ShowPicker: input.showPicker,
        TakeoffDelay: 0,
        Timeout: input.timeout,
      },
      Debug: {
        AppleDebug: false,
        ApplePanic: true,
        DisableWatchDog: true,
        DisplayLevel: 2147483650,
        SerialInit: false,
        SysReport: false,
        Target: 3,
      },
      Entries: [],
      Security: {
        AllowSetDefault: true,
        AuthRestart: false,
        BlacklistAppleUpdate: true,
        DmgLoading: "Signed",
        ExposeSensitiveData: 6,
        ScanPolicy: 0,
        SecureBootModel: input.secureBootModel,
        Vault: "Optional",
      },
      Serial: { Init: false, Override: false },
      Tools: input.tools.map((t) => ({
        Arguments: "",
        Auxiliary: true,
        Comment: t,
        Enabled: true,
        Flavour: "Auto",
        FullNvramAccess: false,
        Name: t.replace(/\.efi$/, ""),
        Path: t,
        RealPath: false,
        TextMode: false,
      })),
    },
    NVRAM: {
      Add: {
        [APPLE_BOOT]: { DefaultBackgroundColor: data("00000000") },
        [APPLE_NVRAM]: {
          "boot-args": input.bootArgs,
          "csr-active-config": data("03080000"),
          "prev-lang:kbd": data("656e2d55533a30"),
          "run-efi-updater": "No",
        },
      },
      Delete: { [APPLE_BOOT]: ["DefaultBackgroundColor"], [APPLE_NVRAM]: ["boot-args"] },
      LegacySchema: {},
      WriteFlash: true,
    },
    PlatformInfo: {
      Automatic: true,
      CustomMemory: false,
      Generic: {
        AdviseFeatures: false,
        MaxBIOSVersion: false,
        MLB: id.mlb,
        ProcessorType: 0,
        ROM: data(id.rom),
        SpoofVendor: true,
        SystemMemoryStatus: "Auto",
        SystemProductName: id.model,
        SystemSerialNumber: id.serial,
        SystemUUID: id.uuid,
      },
      UpdateDataHub: true,
      UpdateNVRAM: true,
      UpdateSMBIOS: true,
      UpdateSMBIOSMode: "Create",
      UseRawUuidEncoding: false,
    },
    UEFI: {
      APFS: {
        EnableJumpstart: true,
        GlobalConnect: false,
        HideVerbose: true,
        JumpstartHotPlug: false,
        MinDate: -1,
        MinVersion: -1,
      },
      ConnectDrivers: true,
      Drivers: input.drivers.map((d) => ({
        Arguments: "",
        Comment: d,
        Enabled: true,
        LoadEarly: false,
        Path: d,
      })),
      Output: {
        ClearScreenOnModeSwitch: false,
        ConsoleMode: "",
        DirectGopRendering: false,
        ForceResolution: false,
        GopPassThrough: "Disabled",
        ProvideConsoleGop: true,
        Resolution: input.resolution,
        TextRenderer: "BuiltinGraphics",
      },
      Quirks: {
        EnableVectorAcceleration: true,
        ExitBootServicesDelay: 0,
        ReleaseUsbOwnership: false,
        RequestBootVarRouting: true,
        UnblockFsConnect: false,
      },
      ReservedMemory: [],
    },
  };
}

function toPlist(value: PlistValue): unknown {
  if (Array.isArray(value)) return value.map(toPlist);
  if (value && typeof value === "object") {
    if ("$data" in value && typeof value.$data === "string") {
      return Buffer.from(value.$data, "hex");
    }
    return Object.fromEntries(
      Object.entries(value as Record<string, PlistValue>).map(([k, v]) => [k, toPlist(v)]),
    );
  }
  return value;
}

/** The config as plist XML. */
export function configXml(config: Record<string, PlistValue>): string {
  return `${plist.build(toPlist(config) as never)}\n`;
}

export type { PlistValue };
