/**
 * `console.attach`: connects the user's terminal to a VM's serial console (the unix socket of
 * its `-serial` chardev) until the detach key (Ctrl-]) or the VM stops, after showing the last
 * lines of the console's log. Interactive: it runs only when the run has the terminal.
 *
 * @module
 */
import { z } from "zod";
import { InterruptedError, UsageError } from "../errors.ts";
import { STOP_SIGNALS } from "../signals.ts";
import { attachSocket, DETACH_KEY, logTail } from "../host/terminal.ts";
import { defineOp } from "./types.ts";

const ConsoleAttachArgs = z.strictObject({
  /** The VM's name, for the messages. */
  name: z.string().min(1),
  socket: z.string().min(1),
  log: z.string().min(1),
  /** How many of the log's last lines to show first. */
  lines: z.number().int().min(0).max(10_000),
});
type ConsoleAttachArgs = z.infer<typeof ConsoleAttachArgs>;

export const consoleAttach = defineOp<ConsoleAttachArgs>({
  kind: "console.attach",
  schema: ConsoleAttachArgs,
  pathArgs: ["socket", "log"],
  describe: (a) =>
    `Attach the terminal to the serial console of VM "${a.name}" (${a.socket}; detach with Ctrl-])`,
  estimate: () => ({ bytes: 0, seconds: 0 }),
  permission: (a) => [{ grant: "write", path: a.socket }, { grant: "read", path: a.log }],
  interactive: true,
  capture: () => Promise.resolve(null),
  conflicts: () => [],
  async execute(a, env) {
    const tty = Deno.stdin.isTerminal();
    const before = await logTail(a.log, a.lines);
    let end;
    try {
      // Said before raw mode, where a newline no longer returns the carriage.
      env.report?.({
        type: "info",
        text: `Connected to the serial console of VM "${a.name}"${
          tty ? "; detach with Ctrl-] (press Enter for a prompt)" : ""
        }`,
      });
      end = await attachSocket(a.socket, { detachKey: DETACH_KEY, before });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.ConnectionRefused) {
        throw new UsageError(
          `Cannot attach to the console of VM "${a.name}": nothing listens on "${a.socket}"`,
          {
            hint:
              `Start it (gini start ${a.name}); a VM started before Gini gave consoles a socket gets one when it restarts (gini restart ${a.name}), its output is in ${a.log}`,
          },
        );
      }
      throw error;
    }
    const words = {
      detached: "Detached from",
      closed: "The VM closed",
      "input-ended": "Input ended; detached from",
    } as const;
    if (end in STOP_SIGNALS) {
      const signal = end as keyof typeof STOP_SIGNALS;
      throw new InterruptedError(
        `Detached from the console of VM "${a.name}": stopped by ${signal}`,
        {},
        STOP_SIGNALS[signal],
      );
    }
    env.report?.({
      type: "info",
      text: `\n${words[end as keyof typeof words]} the console of VM "${a.name}"`,
    });
    return { name: a.name, end };
  },
  simulate: (a) => ({ name: a.name, end: null, simulated: true }),
  inverse: () => [],
});
