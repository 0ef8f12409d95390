import { assert, assertEquals, assertStringIncludes } from "../../tests/_assert.ts";
import { readArgv } from "./argv.ts";
import { isReadOnlyInvocation } from "./run.ts";

function paths(argv: string[]) {
  const reading = readArgv(argv);
  assert(reading.kind === "paths", `${argv.join(" ")}: ${JSON.stringify(reading)}`);
  return { inputs: reading.inputs, outputs: reading.outputs };
}

Deno.test("readArgv() finds the input and output paths of every argv the core plugins build", async (t) => {
  const cases: [string, string[], string[], string[]][] = [
    ["qemu-img info", ["qemu-img", "info", "--output=json", "-U", "/d/x.qcow2"], [
      "/d/x.qcow2",
    ], []],
    ["qemu-img convert (recovery)", ["qemu-img", "convert", "-O", "raw", "/c/a.dmg", "/c/a.img"], [
      "/c/a.dmg",
    ], ["/c/a.img"]],
    [
      "qemu-img convert (OpenCore)",
      ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "/v/oc.img", "/v/oc.qcow2"],
      ["/v/oc.img"],
      ["/v/oc.qcow2"],
    ],
    ["qemu-img create", ["qemu-img", "create", "-q", "-f", "raw", "/v/oc.img", "64M"], [], [
      "/v/oc.img",
    ]],
    [
      "qemu-img create with a relative backing file",
      ["qemu-img", "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "/v/x.qcow2"],
      ["/v/base.qcow2"],
      ["/v/x.qcow2"],
    ],
    [
      "qemu-img create -o backing_file",
      ["qemu-img", "create", "-f", "qcow2", "-o", "backing_file=/b.qcow2,cluster_size=65536", "/o"],
      ["/b.qcow2"],
      ["/o"],
    ],
    ["qemu-img --version", ["qemu-img", "--version"], [], []],
    [
      "sgdisk",
      ["sgdisk", "-n", "1:2048:0", "-t", "1:EF00", "-c", "1:EFI System", "/v/oc.img"],
      [],
      ["/v/oc.img"],
    ],
    [
      "mkfs.fat",
      [
        "mkfs.fat",
        "-F",
        "32",
        "-s",
        "1",
        "-S",
        "512",
        "-n",
        "OPENCORE",
        "--offset",
        "2048",
        "/v/oc.img",
        "63470",
      ],
      [],
      ["/v/oc.img"],
    ],
    ["mcopy into an image", ["mcopy", "-s", "-Q", "-i", "/v/oc.img@@1M", "/v/tree/EFI", "::/"], [
      "/v/tree/EFI",
    ], ["/v/oc.img"]],
    ["mcopy out of an image", ["mcopy", "-i", "/v/oc.img", "::/EFI/x", "/v/x"], ["/v/oc.img"], [
      "/v/x",
    ]],
    ["mmd", ["mmd", "-i", "/v/oc.img", "::/EFI"], [], ["/v/oc.img"]],
    ["mdir", ["mdir", "-i", "/v/oc.img", "::/"], ["/v/oc.img"], []],
    ["isoinfo", ["isoinfo", "-i", "/v/seed.iso", "-l", "-R"], ["/v/seed.iso"], []],
    [
      "xorriso -as mkisofs",
      [
        "xorriso",
        "-as",
        "mkisofs",
        "-quiet",
        "-output",
        "/v/seed.iso",
        "-volid",
        "cidata",
        "-joliet",
        "-rock",
        "--set_all_file_dates",
        "=1",
        "/v/cidata/meta-data",
        "/v/cidata/user-data",
      ],
      ["/v/cidata/meta-data", "/v/cidata/user-data"],
      ["/v/seed.iso"],
    ],
    [
      "genisoimage",
      ["genisoimage", "-quiet", "-output", "/v/s.iso", "-volid", "cidata", "-joliet", "/v/m"],
      ["/v/m"],
      ["/v/s.iso"],
    ],
    [
      "virsh start",
      ["virsh", "-c", "qemu:///system", "start", "vm"],
      [],
      [],
    ],
    ["virsh undefine", ["virsh", "-c", "qemu:///system", "undefine", "vm", "--nvram"], [], []],
    ["swtpm_ioctl", ["swtpm_ioctl", "--unix", "/v/tpm.sock", "-s"], [], ["/v/tpm.sock"]],
    [
      "vgs",
      ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name"],
      [],
      [],
    ],
    ["qemu-system-x86_64 --version", ["qemu-system-x86_64", "--version"], [], []],
    ["grub-mkconfig", ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], [], ["/boot/grub/grub.cfg"]],
    ["update-initramfs", ["update-initramfs", "-u", "-k", "all"], [], ["/boot"]],
    [
      "chroot re-roots the command's paths",
      ["chroot", "/h", "grub-mkconfig", "-o", "/boot/grub/grub.cfg"],
      ["/h"],
      ["/h/boot/grub/grub.cfg"],
    ],
  ];
  for (const [name, argv, inputs, outputs] of cases) {
    await t.step(name, () => assertEquals(paths(argv), { inputs, outputs }));
  }
});

Deno.test("readArgv() does not understand arguments that could name a path it cannot see", async (t) => {
  const cases: [string, string[], string][] = [
    ["a qemu-img subcommand", ["qemu-img", "rebase", "-b", "/etc/shadow", "/v/x"], "rebase"],
    [
      "a qemu-img flag",
      ["qemu-img", "convert", "--object", "secret,file=/k", "/a", "/b"],
      "--object",
    ],
    ["-o with a file key", ["qemu-img", "create", "-o", "key-secret_file=/k", "/a"], "key-secret"],
    ["qemu-system with a drive", ["qemu-system-x86_64", "-drive", "file=/etc/shadow"], "only"],
    ["swtpm socket", ["swtpm", "socket", "--tpmstate", "dir=/x"], "only"],
    ["lvcreate through run", ["lvcreate", "-L", "1G", "-n", "x", "vg"], "only"],
    ["lvm --config", ["vgs", "--config", "devices{}"], "--config"],
    ["native xorriso", ["xorriso", "-indev", "/etc/shadow", "-extract", "/", "/t"], "-as mkisofs"],
    ["mkisofs -graft-points", ["genisoimage", "-graft-points", "-o", "/o", "a=/etc"], "-graft"],
    ["an mtools drive", ["mcopy", "-i", "/v/a.img", "a:/x", "/v/x"], "drive"],
    ["mtools without -i", ["mcopy", "/etc/shadow", "::/"], "-i IMAGE"],
    ["virsh define", ["virsh", "define", "/v/vm.xml"], "domain XML"],
    ["another libvirt URI", ["virsh", "-c", "qemu+ext:///system?command=/x", "list"], "URI"],
    ["virsh undefine --remove-all-storage", [
      "virsh",
      "undefine",
      "vm",
      "--remove-all-storage",
    ], "--remove-all-storage"],
    ["sgdisk with two disks", ["sgdisk", "-o", "/a", "/b"], "one disk"],
    ["a short option with its value attached", ["mkfs.fat", "-F32", "/a"], "-F32"],
    ["chroot of an undescribed program", ["chroot", "/h", "sh", "-c", "id"], "sh"],
  ];
  for (const [name, argv, reason] of cases) {
    await t.step(name, () => {
      const reading = readArgv(argv);
      assert(reading.kind === "unknown", JSON.stringify(reading));
      assertStringIncludes(reading.reason, reason);
    });
  }
  await t.step("a program without a description", () => {
    assertEquals(readArgv(["sh", "-c", "id"]), { kind: "undescribed" });
    assertEquals(readArgv(["cp", "/etc/shadow", "/tmp/x"]), { kind: "undescribed" });
  });
  await t.step("the VFIO rebuilds are understood but for core plugins only", () => {
    const reading = readArgv(["dracut", "--force", "--regenerate-all"]);
    assert(reading.kind === "paths" && reading.coreOnly?.includes("hooks"));
  });
});

Deno.test("qemu-img check repairs with -r: a change, never run in a dry run", () => {
  assertEquals(isReadOnlyInvocation(["qemu-img", "check", "/x.qcow2"]), true);
  assertEquals(isReadOnlyInvocation(["qemu-img", "check", "-r", "all", "/x.qcow2"]), false);
});
