/**
 * `autounattend.xml`: the answer file Windows Setup finds on any drive, built as data with an XML
 * library and checked against the structure Gini knows (passes, components and their attributes,
 * the settings each component may hold) before it is written. Three passes: windowsPE (language,
 * a UEFI disk layout EFI + MSR + NTFS C:, the image by `/IMAGE/INDEX`, the product key), specialize
 * (computer name, time zone) and oobeSystem (OOBE pages hidden, a local administrator, one
 * automatic logon whose first-logon commands install the QEMU guest agent and the display driver,
 * enable OpenSSH server and leave a done marker).
 *
 * @example
 * ```ts
 * const xml = buildAnswerFile({ profile: "11-24h2", imageIndex: 6, language: "en-US", … });
 * checkAnswerFile(xml); // throws naming what is wrong
 * ```
 *
 * @module
 */
import { XMLBuilder, XMLParser, XMLValidator } from "fast-xml-parser";
import type { WINDOWS_VERSIONS } from "../qemu_setup/vm_schema.ts";

/** A Windows release Gini writes answer files for. */
export type WindowsProfile = typeof WINDOWS_VERSIONS[number];

/** What an answer file says. */
export type AnswerFileOptions = {
  profile: WindowsProfile;
  imageIndex: number;
  language: string;
  user: string;
  password: string;
  productKey: string | null;
  timezone: string;
  computerName: string;
  firstLogon: string[];
  /** Windows 11 without TPM 2.0 or Secure Boot: Setup's LabConfig keys skip its checks. */
  bypassChecks: boolean;
};

/** The virtio-win folder of each profile's drivers (`viostor/w11/amd64`). */
export const DRIVER_FOLDER: Record<WindowsProfile, string> = {
  "10": "w10",
  "11-23h2": "w11",
  "11-24h2": "w11",
  "server-2022": "2k22",
  "server-2025": "2k25",
};

/** A NetBIOS name from a VM's name: 15 letters, digits and '-', not only digits. */
export function computerName(vm: string): string {
  const name = vm.replace(/[^A-Za-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 15) || "WINDOWS";
  return /^[0-9]+$/.test(name) ? `W${name}`.slice(0, 15) : name;
}

/** Whether a profile is a Windows Server release (built-in Administrator, no consumer OOBE). */
export const isServer = (profile: WindowsProfile): boolean => profile.startsWith("server-");

/** The line the first logon writes to COM1 when it is done (the serial log shows it). */
export const DONE_MARKER = "GINI-WINDOWS-READY";
/** The file the first logon leaves when it is done (the guest agent can see it). */
export const DONE_FILE = "C:\\ProgramData\\Gini\\install-done";

/**
 * A password as an answer file holds it with `PlainText` false: base64 of the UTF-16LE text of
 * the password followed by the element's name ("Password", "AdministratorPassword"). This hides it
 * from a glance, not from anyone: the file is written mode 0600.
 */
export function obfuscatePassword(
  password: string,
  element: "Password" | "AdministratorPassword",
): string {
  const text = password + element;
  const bytes = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    bytes[2 * i] = code & 0xff;
    bytes[2 * i + 1] = code >> 8;
  }
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

const NS = "urn:schemas-microsoft-com:unattend";
const WCM = "http://schemas.microsoft.com/WMIConfig/2002/State";
const XSI = "http://www.w3.org/2001/XMLSchema-instance";

/** The attributes every component of an amd64 answer file carries. */
const COMPONENT_ATTRIBUTES = {
  processorArchitecture: "amd64",
  publicKeyToken: "31bf3856ad364e35",
  language: "neutral",
  versionScope: "nonSxS",
} as const;

type Node = Record<string, unknown>;

function component(name: string, body: Node): Node {
  const attributes: Node = { "@_name": name };
  for (const [k, v] of Object.entries(COMPONENT_ATTRIBUTES)) attributes[`@_${k}`] = v;
  return { ...attributes, ...body };
}

const add = (body: Node): Node => ({ "@_wcm:action": "add", ...body });

/**
 * A command that runs from the drive holding Gini's files (`\gini\` on the answer-file image),
 * whatever letter Windows gave it.
 */
function fromGiniDrive(script: string): string {
  return `powershell -NoProfile -ExecutionPolicy Bypass -Command "$g = (Get-PSDrive -PSProvider FileSystem | Where-Object { Test-Path (Join-Path $_.Root 'gini') } | Select-Object -First 1).Root + 'gini'; ${script}"`;
}

/** The first-logon commands: the guest agent, the display driver, OpenSSH, the user's, done. */
export function firstLogonCommands(options: Pick<AnswerFileOptions, "firstLogon">): {
  description: string;
  command: string;
}[] {
  return [
    {
      description: "Install the QEMU guest agent",
      command: fromGiniDrive(
        "Start-Process msiexec.exe -Wait -ArgumentList '/i', (Join-Path $g 'qemu-ga-x86_64.msi'), '/qn', '/norestart'",
      ),
    },
    {
      description: "Install the virtio display driver (viogpudo)",
      command: fromGiniDrive("pnputil.exe /add-driver (Join-Path $g 'viogpudo\\*.inf') /install"),
    },
    {
      description: "Enable OpenSSH server (gini ssh)",
      command:
        `powershell -NoProfile -ExecutionPolicy Bypass -Command "if (-not (Get-Service sshd -ErrorAction SilentlyContinue)) { Add-WindowsCapability -Online -Name OpenSSH.Server~~~~0.0.1.0 }; Set-Service sshd -StartupType Automatic; Start-Service sshd; if (-not (Get-NetFirewallRule -Name sshd -ErrorAction SilentlyContinue)) { New-NetFirewallRule -Name sshd -DisplayName 'OpenSSH Server' -Protocol TCP -LocalPort 22 -Action Allow }"`,
    },
    ...options.firstLogon.map((command, i) => ({
      description: `first_logon[${i}]`,
      command: `cmd.exe /c ${command}`,
    })),
    {
      description: "Tell Gini the installation is done",
      command:
        `cmd.exe /c mkdir C:\\ProgramData\\Gini 2>nul & echo done> ${DONE_FILE} & echo ${DONE_MARKER}> COM1`,
    },
  ];
}

/** The LabConfig keys Windows 11 Setup reads to skip its TPM, Secure Boot and RAM checks. */
const LABCONFIG = ["BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck"];

/** The answer file, as the text Setup reads. */
export function buildAnswerFile(o: AnswerFileOptions): string {
  const server = isServer(o.profile);
  const windows11 = o.profile.startsWith("11-");
  const locale = {
    InputLocale: o.language,
    SystemLocale: o.language,
    UILanguage: o.language,
    UserLocale: o.language,
  };
  const password = (element: "Password" | "AdministratorPassword") => ({
    Value: obfuscatePassword(o.password, element),
    PlainText: "false",
  });
  const partition = (order: number, body: Node) => add({ Order: order, ...body });
  const setup: Node = {
    DiskConfiguration: {
      Disk: add({
        DiskID: 0,
        WillWipeDisk: "true",
        CreatePartitions: {
          CreatePartition: [
            partition(1, { Type: "EFI", Size: 300 }),
            partition(2, { Type: "MSR", Size: 16 }),
            partition(3, { Type: "Primary", Extend: "true" }),
          ],
        },
        ModifyPartitions: {
          ModifyPartition: [
            partition(1, { PartitionID: 1, Label: "System", Format: "FAT32" }),
            partition(2, { PartitionID: 2 }),
            partition(3, { PartitionID: 3, Label: "Windows", Letter: "C", Format: "NTFS" }),
          ],
        },
      }),
    },
    ImageInstall: {
      OSImage: {
        InstallFrom: { MetaData: add({ Key: "/IMAGE/INDEX", Value: o.imageIndex }) },
        InstallTo: { DiskID: 0, PartitionID: 3 },
        WillShowUI: "OnError",
      },
    },
    UserData: {
      AcceptEula: "true",
      ...(o.productKey ? { ProductKey: { Key: o.productKey, WillShowUI: "Never" } } : {}),
    },
    ...(windows11 && o.bypassChecks
      ? {
        RunSynchronous: {
          RunSynchronousCommand: LABCONFIG.map((value, i) =>
            add({
              Order: i + 1,
              Path: `reg.exe add HKLM\\SYSTEM\\Setup\\LabConfig /v ${value} /t REG_DWORD /d 1 /f`,
            })
          ),
        },
      }
      : {}),
  };
  const oobe: Node = {
    HideEULAPage: "true",
    HideOEMRegistrationScreen: "true",
    ...(server ? {} : { HideOnlineAccountScreens: "true", HideWirelessSetupInOOBE: "true" }),
    HideLocalAccountScreen: "true",
    ProtectYourPC: 3,
  };
  const doc = {
    "?xml": { "@_version": "1.0", "@_encoding": "utf-8" },
    unattend: {
      "@_xmlns": NS,
      "@_xmlns:wcm": WCM,
      "@_xmlns:xsi": XSI,
      settings: [
        {
          "@_pass": "windowsPE",
          component: [
            component("Microsoft-Windows-International-Core-WinPE", {
              SetupUILanguage: { UILanguage: o.language },
              ...locale,
            }),
            component("Microsoft-Windows-Setup", setup),
          ],
        },
        {
          "@_pass": "specialize",
          component: [
            component("Microsoft-Windows-Shell-Setup", {
              ComputerName: o.computerName,
              TimeZone: o.timezone,
            }),
          ],
        },
        {
          "@_pass": "oobeSystem",
          component: [
            component("Microsoft-Windows-International-Core", locale),
            component("Microsoft-Windows-Shell-Setup", {
              OOBE: oobe,
              UserAccounts: {
                ...(server ? { AdministratorPassword: password("AdministratorPassword") } : {}),
                LocalAccounts: {
                  LocalAccount: add({
                    Name: o.user,
                    DisplayName: o.user,
                    Group: "Administrators",
                    Password: password("Password"),
                  }),
                },
              },
              AutoLogon: {
                Enabled: "true",
                Username: o.user,
                LogonCount: 1,
                Password: password("Password"),
              },
              FirstLogonCommands: {
                SynchronousCommand: firstLogonCommands(o).map((c, i) =>
                  add({
                    Order: i + 1,
                    CommandLine: c.command,
                    Description: c.description,
                    RequiresUserInput: "false",
                  })
                ),
              },
              TimeZone: o.timezone,
            }),
          ],
        },
      ],
    },
  };
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    format: true,
    indentBy: "  ",
    suppressEmptyNode: true,
  });
  return builder.build(doc) as string;
}

/** The passes, their components and the settings Gini writes in each. */
const KNOWN: Record<string, Record<string, readonly string[]>> = {
  windowsPE: {
    "Microsoft-Windows-International-Core-WinPE": [
      "SetupUILanguage",
      "InputLocale",
      "SystemLocale",
      "UILanguage",
      "UserLocale",
    ],
    "Microsoft-Windows-Setup": ["DiskConfiguration", "ImageInstall", "UserData", "RunSynchronous"],
  },
  specialize: { "Microsoft-Windows-Shell-Setup": ["ComputerName", "TimeZone"] },
  oobeSystem: {
    "Microsoft-Windows-International-Core": [
      "InputLocale",
      "SystemLocale",
      "UILanguage",
      "UserLocale",
    ],
    "Microsoft-Windows-Shell-Setup": [
      "OOBE",
      "UserAccounts",
      "AutoLogon",
      "FirstLogonCommands",
      "TimeZone",
    ],
  },
};

/** An answer file that does not have the structure Gini knows, and where. */
export class AnswerFileError extends Error {}

const list = <T>(v: T | T[] | undefined): T[] => v === undefined ? [] : Array.isArray(v) ? v : [v];

/**
 * Checks an answer file before it is written: well-formed XML; the unattend namespace; only the
 * passes and components above, each with the attributes an amd64 component needs and only the
 * settings Gini knows for it; the image chosen by `/IMAGE/INDEX`; passwords not in plain text.
 */
export function checkAnswerFile(xml: string): void {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw new AnswerFileError(
      `it is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`,
    );
  }
  const doc = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    parseTagValue: false,
  })
    .parse(xml) as { unattend?: Node };
  const root = doc.unattend;
  if (!root) throw new AnswerFileError("its root element is not <unattend>");
  if (root["@xmlns"] !== NS) throw new AnswerFileError(`<unattend> is not in the namespace ${NS}`);
  if (root["@xmlns:wcm"] !== WCM) {
    throw new AnswerFileError(`<unattend> does not declare wcm: ${WCM}`);
  }
  const seen = new Set<string>();
  for (const settings of list(root.settings as Node | Node[])) {
    const pass = String(settings["@pass"]);
    const known = KNOWN[pass];
    if (!known) throw new AnswerFileError(`<settings pass="${pass}"> is not a pass Gini writes`);
    if (seen.has(pass)) throw new AnswerFileError(`the pass ${pass} appears twice`);
    seen.add(pass);
    for (const c of list(settings.component as Node | Node[])) {
      const name = String(c["@name"]);
      const allowed = known[name];
      if (!allowed) throw new AnswerFileError(`${pass} holds the unknown component ${name}`);
      for (const [attribute, value] of Object.entries(COMPONENT_ATTRIBUTES)) {
        if (c[`@${attribute}`] !== value) {
          throw new AnswerFileError(
            `${pass}/${name} has ${attribute}="${c[`@${attribute}`]}", not "${value}"`,
          );
        }
      }
      for (const key of Object.keys(c).filter((k) => !k.startsWith("@"))) {
        if (!allowed.includes(key)) {
          throw new AnswerFileError(
            `${pass}/${name} holds the setting ${key}, which Gini does not know`,
          );
        }
      }
    }
  }
  for (const pass of Object.keys(KNOWN)) {
    if (!seen.has(pass)) throw new AnswerFileError(`the pass ${pass} is missing`);
  }
  const passes = list(root.settings as Node | Node[]);
  const pe = passes.find((s) => s["@pass"] === "windowsPE")!;
  const setup = list(pe.component as Node | Node[]).find((c) =>
    c["@name"] === "Microsoft-Windows-Setup"
  ) as Node | undefined;
  const metadata = list(
    (((setup?.ImageInstall as Node | undefined)?.OSImage as Node | undefined)?.InstallFrom as
      | Node
      | undefined)?.MetaData as Node | Node[] | undefined,
  );
  if (
    metadata.length !== 1 || metadata[0]!.Key !== "/IMAGE/INDEX" ||
    !/^[1-9][0-9]*$/.test(String(metadata[0]!.Value))
  ) {
    throw new AnswerFileError("windowsPE does not choose the image by one /IMAGE/INDEX");
  }
  for (const match of xml.matchAll(/<PlainText>([^<]*)<\/PlainText>/g)) {
    if (match[1] !== "false") throw new AnswerFileError("a password is in plain text");
  }
}
