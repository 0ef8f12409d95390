/**
 * docs, tested with the kit: `gini docs --section vm-file` renders the VM file's JSON Schema as
 * the README's key table; without the kernel's catalogue the stage refuses; and a folder the user
 * did not name with --output is outside what it may write.
 */
import { loadPlugin, test } from "../../workers/testing.ts";

const plugin = await loadPlugin(new URL(".", import.meta.url));
const CATALOGUE = {
  kernelApi: "1.0.0",
  commands: [],
  globalFlags: [],
  plugins: [],
  graph: { plugins: [], stages: [] },
};
const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", description: "the VM's name" },
    memory: {
      type: "object",
      description: "its memory",
      properties: { size: { type: "string", description: "how much" } },
    },
  },
};

test("docs:generate renders the VM file reference from its JSON Schema", async () => {
  const run = await plugin.stage("generate", {
    command: { path: "docs", flags: { format: "md", section: "vm-file" } },
    context: { "session.plugins": CATALOGUE, "qemu_setup.vm_json_schema": SCHEMA },
  });
  run.assertSucceeded();
  run.assertWrote("docs.generated", {
    format: "md",
    dir: null,
    files: [],
    text: [
      "| key | type | default | meaning |",
      "| --- | --- | --- | --- |",
      "| `name` | string |  | the VM's name |",
      "| `memory` | table |  | its memory |",
      "| `memory.size` | string |  | how much |",
      "",
    ].join("\n"),
  });
  run.assertNoOp(/Would/);
});

test("docs:generate refuses a run without the kernel's plugin catalogue", async () => {
  const run = await plugin.stage("generate", {
    command: { path: "docs", flags: { format: "md" } },
  });
  run.assertFailed('the kernel gave no "session.plugins" to this run');
});

test("docs:generate may not write a folder the user did not name", async () => {
  const run = await plugin.stage("generate", {
    command: { path: "docs", flags: { format: "man", output: "/tmp/gini-docs-kit" } },
    context: { "session.plugins": CATALOGUE, "qemu_setup.vm_json_schema": SCHEMA },
  });
  run.assertFailed("it is outside the plugin's write grant");
});
