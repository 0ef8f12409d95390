/**
 * The three files of a NoCloud seed: meta-data, user-data (#cloud-config) and
 * network-config (version 2), as YAML.
 *
 * @module
 */
import { stringify } from "yaml";
import type { UserVmRequest } from "../../workers/sdk.ts";
import type { LinuxConfig } from "../qemu_setup/vm_schema.ts";

/** What the kernel adds to a request from the user's session. */
export type RequestDefaults = NonNullable<UserVmRequest["defaults"]>;

/** A stable instance-id: cloud-init runs again only when it changes (on purpose). */
export function instanceId(name: string, uuid: string, linux: LinuxConfig): string {
  return linux.instance_id ?? `iid-${name}-${uuid.slice(0, 8)}`;
}

export function metaData(name: string, id: string, linux: LinuxConfig): string {
  return stringify({ "instance-id": id, "local-hostname": linux.hostname ?? name });
}

/**
 * What `guest_agent` (on by default) adds: the QEMU guest agent, installed and started (`gini
 * exec`, the guest's addresses), and a login prompt on the serial console (`gini console`), which
 * images whose kernel command line lacks `console=ttyS0` do not start by themselves.
 */
export const GUEST_ACCESS = {
  packages: ["qemu-guest-agent"],
  runcmd: [
    "systemctl enable --now qemu-guest-agent",
    "systemctl enable --now serial-getty@ttyS0.service",
  ],
} as const;

export function userData(name: string, linux: LinuxConfig, defaults: RequestDefaults): string {
  const user = linux.user ?? defaults.user ?? "gini";
  const keys = linux.ssh_authorized_keys ?? defaults.sshKeys ?? [];
  const access = linux.guest_agent ? GUEST_ACCESS : { packages: [], runcmd: [] };
  const packages = [...new Set([...access.packages, ...linux.packages])];
  // The user's commands last: cloud-init reports the script's exit status, theirs.
  const runcmd = [...access.runcmd, ...linux.runcmd];
  const config: Record<string, unknown> = {
    hostname: linux.hostname ?? name,
    fqdn: linux.hostname ?? name,
    preserve_hostname: false,
    users: [{
      name: user,
      shell: "/bin/bash",
      groups: ["adm", "sudo"],
      ...(linux.sudo ? { sudo: "ALL=(ALL) NOPASSWD:ALL" } : {}),
      ...(keys.length ? { ssh_authorized_keys: keys } : {}),
      ...(linux.password_hash
        ? { passwd: linux.password_hash, lock_passwd: false }
        : { lock_passwd: true }),
    }],
    ssh_pwauth: Boolean(linux.password_hash),
    ...(linux.timezone ? { timezone: linux.timezone } : {}),
    ...(linux.locale ? { locale: linux.locale } : {}),
    ...(linux.package_update || packages.length ? { package_update: linux.package_update } : {}),
    ...(packages.length ? { packages } : {}),
    ...(linux.write_files.length
      ? {
        write_files: linux.write_files.map((f) => ({
          path: f.path,
          content: f.content,
          ...(f.permissions ? { permissions: f.permissions } : {}),
          ...(f.owner ? { owner: f.owner } : {}),
        })),
      }
      : {}),
    ...(runcmd.length ? { runcmd } : {}),
  };
  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}

/**
 * Network config v2 for the VM's first NIC, matched by its MAC: every renderer cloud-init
 * has (ifupdown, networkd, netplan, NetworkManager) can match a MAC, not all can match a name glob.
 */
export function networkConfig(linux: LinuxConfig, mac: string | null): string {
  if (!mac) return stringify({ version: 2, ethernets: {} });
  const net = linux.network ?? { dhcp: true, addresses: [], nameservers: [] };
  const match = { match: { macaddress: mac }, "set-name": "eth0" };
  const ethernet = net.addresses.length
    ? {
      ...match,
      dhcp4: false,
      addresses: net.addresses,
      ...(net.gateway ? { routes: [{ to: "default", via: net.gateway }] } : {}),
      ...(net.nameservers.length ? { nameservers: { addresses: net.nameservers } } : {}),
    }
    : { ...match, dhcp4: net.dhcp };
  return stringify({ version: 2, ethernets: { primary: ethernet } });
}
