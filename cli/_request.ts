/**
 * What a VM request takes from the user's session, which only the kernel may read: the login
 * name and the public keys in `~/.ssh`.
 *
 * @module
 */
import type { StartupEnv } from "../kernel/mod.ts";

/** The user's login name and `~/.ssh/*.pub` keys, for a new VM's account. */
export async function requestDefaults(
  env: StartupEnv,
): Promise<{ user?: string; sshKeys: string[] }> {
  const sshKeys: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${env.home}/.ssh`)) {
      if (!entry.name.endsWith(".pub")) continue;
      const key = (await Deno.readTextFile(`${env.home}/.ssh/${entry.name}`)).trim();
      if (/^(ssh-|ecdsa-|sk-)/.test(key)) sshKeys.push(key);
    }
  } catch { /* no ~/.ssh */ }
  return { ...(env.user ? { user: env.user } : {}), sshKeys: sshKeys.sort() };
}
