#!/usr/bin/env python3
"""Static boot check of a Raspberry Pi image, per model: would this card boot on that Pi?

For each model the docs claim, the FAT boot partition must hold what the Pi's firmware
loads (bootcode.bin/start*.elf/fixup*.dat), a config.txt with the lines a 64-bit kernel
needs (arm_64bit=1, kernel=..., initramfs ...), the model's device tree, the kernel and an
initramfs holding every module the model's SD card path needs. Those modules are not
listed by hand: they are read from the model's own device tree (the SD controller, its
regulators, clocks, resets, power domains, GPIO and DMA providers, and their parents, as
the kernel would probe them) and mapped to modules with the image's modules.alias and
modules.dep, as modprobe would.

    pi_boot_check.py IMAGE                 a built image (.img): reads its partitions
    pi_boot_check.py --boot DIR --root DIR the boot partition's files and the root tree

Exit 0 when every model passes; 1 with the reasons otherwise. Needs mtools, e2fsprogs
(debugfs), sfdisk, and zstd/xz/gzip as the initramfs needs.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import lzma
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Model:
    name: str
    dtb: str  # the upstream (mainline kernel) name, loaded with upstream_kernel=1
    downstream_dtb: str  # the Raspberry Pi kernel's name, loaded without it
    firmware: tuple[str, ...]


PI3_FIRMWARE = ("bootcode.bin", "start.elf", "fixup.dat")
PI4_FIRMWARE = ("start4.elf", "fixup4.dat")  # the Pi 4 boots from its EEPROM
MODELS = (
    Model("Pi 3 B", "bcm2837-rpi-3-b.dtb", "bcm2710-rpi-3-b.dtb", PI3_FIRMWARE),
    Model("Pi 3 B+", "bcm2837-rpi-3-b-plus.dtb", "bcm2710-rpi-3-b-plus.dtb", PI3_FIRMWARE),
    Model("Zero 2 W", "bcm2837-rpi-zero-2-w.dtb", "bcm2710-rpi-zero-2-w.dtb", PI3_FIRMWARE),
    Model("Pi 4 B", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-4-b.dtb", PI4_FIRMWARE),
    Model("Pi 400", "bcm2711-rpi-400.dtb", "bcm2711-rpi-400.dtb", PI4_FIRMWARE),
)
# Modules the root file system needs whatever the board (the device tree cannot say).
ROOT_FS_MODULES = ("ext4",)


# ---- device trees (the flattened format, as the firmware hands it to the kernel) ----


@dataclass
class Node:
    name: str
    parent: Node | None
    props: dict[str, bytes] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        return self.parent.path.rstrip("/") + "/" + self.name

    def strings(self, prop: str) -> list[str]:
        raw = self.props.get(prop)
        return [s.decode() for s in raw.split(b"\0")[:-1]] if raw else []

    def cells(self, prop: str) -> list[int]:
        raw = self.props.get(prop, b"")
        return list(struct.unpack(f">{len(raw) // 4}I", raw))

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


def parse_fdt(blob: bytes) -> Node:
    """The tree of a .dtb (devicetree specification, "Flattened devicetree format")."""
    magic, _size, off_struct, off_strings = struct.unpack_from(">4I", blob, 0)
    if magic != FDT_MAGIC:
        raise ValueError("not a flattened device tree")
    pos, node, root = off_struct, None, None
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == FDT_BEGIN_NODE:
            end = blob.index(b"\0", pos)
            child = Node(blob[pos:end].decode(), node)
            if node is None:
                root = child
            else:
                node.children.append(child)
            node = child
            pos = (end + 1 + 3) & ~3
        elif token == FDT_END_NODE:
            assert node is not None
            node = node.parent
        elif token == FDT_PROP:
            length, name_off = struct.unpack_from(">2I", blob, pos)
            pos += 8
            name = blob[off_strings + name_off : blob.index(b"\0", off_strings + name_off)]
            assert node is not None
            node.props[name.decode()] = blob[pos : pos + length]
            pos = (pos + length + 3) & ~3
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            break
        else:
            raise ValueError(f"bad device tree token {token} at {pos - 4}")
    if root is None:
        raise ValueError("empty device tree")
    return root


# Properties that point at providers the consumer's probe waits for, with the provider's
# property that says how many argument cells follow each phandle (None: bare phandles).
PROVIDER_REFERENCES: dict[str, str | None] = {
    "clocks": "#clock-cells",
    "resets": "#reset-cells",
    "power-domains": "#power-domain-cells",
    "dmas": "#dma-cells",
    "interrupt-parent": None,
}


def _reference_cells(prop: str) -> str | None | bool:
    """How to read a property's phandles; False if it references nothing we follow."""
    if prop in PROVIDER_REFERENCES:
        return PROVIDER_REFERENCES[prop]
    if prop.endswith("-supply") or re.fullmatch(r"pinctrl-\d+", prop):
        return None
    if prop in ("gpios", "gpio") or prop.endswith("-gpios") or prop.endswith("-gpio"):
        return "#gpio-cells"
    return False


def _is_enabled(node: Node) -> bool:
    return node.strings("status")[:1] in ([], ["okay"], ["ok"])


def dependencies(root: Node, start: Node) -> list[Node]:
    """`start`, its parents, and every provider it (transitively) references."""
    by_phandle = {
        n.cells(p)[0]: n for n in root.walk() for p in ("phandle", "linux,phandle") if p in n.props
    }
    seen: dict[str, Node] = {}
    todo = [start]
    while todo:
        node = todo.pop()
        if node.path in seen:
            continue
        seen[node.path] = node
        if node.parent is not None:
            todo.append(node.parent)
        for prop in node.props:
            how = _reference_cells(prop)
            if how is False:
                continue
            cells, i = node.cells(prop), 0
            while i < len(cells):
                provider = by_phandle.get(cells[i])
                if provider is None:  # 0 (an empty slot) or a broken reference
                    i += 1
                    continue
                todo.append(provider)
                extra = (
                    provider.cells(how)[0] if isinstance(how, str) and how in provider.props else 0
                )
                i += 1 + extra
    return list(seen.values())


def sd_card_controllers(root: Node) -> list[Node]:
    """The enabled MMC controllers with a card slot (not the soldered Wi-Fi SDIO one)."""
    return [
        n
        for n in root.walk()
        if re.match(r"(mmc|mmcnr|sdhci|sdhost|emmc\d*)@", n.name)
        and "compatible" in n.props
        and _is_enabled(n)
        and "non-removable" not in n.props
    ]


def modalias(node: Node) -> str:
    """The kernel's of: modalias of a node (of_device_get_modalias)."""
    name = node.name.split("@")[0]
    kind = node.strings("device_type")[:1] or ["<NULL>"]
    return f"of:N{name}T{kind[0]}" + "".join(f"C{c}" for c in node.strings("compatible"))


# ---- kernel modules ----


def module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base).replace("-", "_")


@dataclass
class ModuleIndex:
    aliases: list[tuple[str, str]]  # (pattern, module)
    deps: dict[str, list[str]]  # module -> modules it needs

    @classmethod
    def parse(cls, alias_text: str, dep_text: str) -> ModuleIndex:
        aliases = []
        for line in alias_text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "alias" and parts[1].startswith("of:"):
                aliases.append((parts[1], parts[2].replace("-", "_")))
        deps = {}
        for line in dep_text.splitlines():
            if ":" in line:
                mod, needs = line.split(":", 1)
                deps[module_name(mod)] = [module_name(d) for d in needs.split()]
        return cls(aliases, deps)

    def for_modalias(self, alias: str) -> set[str]:
        return {mod for pattern, mod in self.aliases if fnmatch.fnmatchcase(alias, pattern)}

    def closure(self, modules: set[str]) -> set[str]:
        out: set[str] = set()
        todo = list(modules)
        while todo:
            mod = todo.pop()
            if mod not in out:
                out.add(mod)
                todo.extend(self.deps.get(mod, []))
        return out


def required_modules(dtb: bytes, index: ModuleIndex) -> tuple[set[str], list[str]]:
    """Modules the model's SD card path needs, and the controllers found (for messages)."""
    root = parse_fdt(dtb)
    controllers = sd_card_controllers(root)
    needed: set[str] = set(ROOT_FS_MODULES)
    for controller in controllers:
        for node in dependencies(root, controller):
            if "compatible" in node.props and _is_enabled(node):
                needed |= index.for_modalias(modalias(node))
    names = [f"{c.path} ({', '.join(c.strings('compatible'))})" for c in controllers]
    return index.closure(needed), names


# ---- initramfs (newc cpio archives, the first ones possibly uncompressed) ----


def _decompress(data: bytes) -> bytes:
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\xfd7zXZ"):
        return lzma.decompress(data)
    raise ValueError(f"unknown initramfs compression {data[:4].hex()}")


def initramfs_files(data: bytes) -> list[str]:
    names: list[str] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 6] in (b"070701", b"070702"):
            namesize = int(data[pos + 94 : pos + 102], 16)
            filesize = int(data[pos + 54 : pos + 62], 16)
            name = data[pos + 110 : pos + 110 + namesize - 1].decode(errors="replace")
            pos = (pos + 110 + namesize + 3) & ~3
            pos = (pos + filesize + 3) & ~3
            if name != "TRAILER!!!":
                names.append(name)
        elif data[pos] == 0:  # padding between archives
            pos += 1
        else:  # the rest is one compressed archive
            return names + initramfs_files(_decompress(data[pos:]))
    return names


# ---- config.txt ----


def config_settings(text: str, model: Model) -> dict[str, str]:
    """The settings that apply to the model: [all] and its own filter sections."""
    pi4 = model.firmware == PI4_FIRMWARE
    applies, out = True, {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.strip("[]").lower()
            applies = section in (
                "all",
                "pi4" if pi4 else "pi3",
                "pi02" if "Zero" in model.name else "",
            )
            continue
        if applies:
            key, _, value = line.partition("=") if "=" in line else line.partition(" ")
            out[key.strip()] = value.strip()
    return out


# ---- the check ----


@dataclass
class Card:
    boot: Path  # the boot partition's files
    read_root: dict[str, str]  # root file -> text (modules.alias, modules.dep)
    root_label: str


def check_model(card: Card, model: Model) -> list[str]:
    problems = []
    boot = {p.name.lower(): p for p in card.boot.iterdir()}
    for name in model.firmware:
        if name not in boot:
            problems.append(f"firmware file {name} missing")
    if "config.txt" not in boot:
        return problems + ["config.txt missing"]
    settings = config_settings(boot["config.txt"].read_text(), model)
    if settings.get("arm_64bit") != "1":
        problems.append("config.txt: arm_64bit=1 missing (the kernel is 64-bit)")
    kernel = settings.get("kernel", "")
    if kernel.lower() not in boot:
        problems.append(f"config.txt: kernel={kernel or '?'} is not on the boot partition")
    initramfs = settings.get("initramfs", "").split()
    if not initramfs or initramfs[0].lower() not in boot:
        problems.append(
            f"config.txt: initramfs {' '.join(initramfs) or '?'} is not on the boot partition"
        )
    dtb = model.dtb if settings.get("upstream_kernel") == "1" else model.downstream_dtb
    if dtb not in boot:
        return problems + [f"device tree {dtb} missing"]
    cmdline = boot["cmdline.txt"].read_text() if "cmdline.txt" in boot else ""
    root_arg = re.search(r"\broot=(\S+)", cmdline)
    if not root_arg:
        problems.append("cmdline.txt: no root=")
    elif (
        card.root_label
        and root_arg.group(1).startswith("LABEL=")
        and root_arg.group(1)[6:] != card.root_label
    ):
        problems.append(
            f"cmdline.txt: {root_arg.group(0)} but the root partition is labelled {card.root_label}"
        )
    if not kernel or not initramfs or initramfs[0].lower() not in boot:
        return problems
    version = re.sub(r"^vmlinuz-", "", kernel)
    index = ModuleIndex.parse(
        card.read_root.get(f"modules.alias:{version}", ""),
        card.read_root.get(f"modules.dep:{version}", ""),
    )
    if not index.aliases:
        return problems + [f"no modules.alias for kernel {version} in the root file system"]
    needed, controllers = required_modules(boot[dtb].read_bytes(), index)
    if not controllers:
        problems.append(f"{dtb}: no enabled SD card controller")
    present = {
        module_name(f)
        for f in initramfs_files(boot[initramfs[0].lower()].read_bytes())
        if re.search(r"\.ko(\.\w+)?$", f)
    }
    missing = sorted(needed - present)
    if missing:
        problems.append(
            f"initramfs lacks {', '.join(missing)} (needed by {'; '.join(controllers)})"
        )
    print(
        f"  {model.name}: {dtb}, SD: {'; '.join(controllers)}; modules: {' '.join(sorted(needed))}"
    )
    return problems


def check(card: Card, models: tuple[Model, ...] = MODELS) -> int:
    failed = 0
    for model in models:
        problems = check_model(card, model)
        for problem in problems:
            print(f"pi-boot-check: {model.name}: {problem}", file=sys.stderr)
        print(f"pi-boot-check: {model.name}: {'FAILED' if problems else 'ok'}")
        failed += bool(problems)
    if not any(p.name.startswith("bcm2712") for p in card.boot.iterdir()):
        print("pi-boot-check: Pi 5: not claimed (this kernel has no bcm2712 device tree)")
    return 1 if failed else 0


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def card_from_dirs(boot: Path, root: Path) -> Card:
    reads = {}
    for modules in sorted((root / "usr/lib/modules").glob("*")):
        for name in ("modules.alias", "modules.dep"):
            if (modules / name).is_file():
                reads[f"{name}:{modules.name}"] = (modules / name).read_text()
    label = ""
    return Card(boot, reads, label)


def card_from_image(image: Path, work: Path) -> Card:
    """Reads the partitions in place: mtools for FAT, debugfs for ext4 (no mounts)."""
    table = json.loads(_run("sfdisk", "--json", str(image)))["partitiontable"]
    boot_part, root_part = table["partitions"][:2]
    sector = table.get("sectorsize", 512)
    boot = work / "boot"
    boot.mkdir()
    fat = f"{image}@@{boot_part['start'] * sector}"
    _run("mcopy", "-s", "-n", "-i", fat, "::*", str(boot))
    root_img = work / "root.img"
    _run(
        "dd",
        f"if={image}",
        f"of={root_img}",
        f"bs={sector}",
        f"skip={root_part['start']}",
        f"count={root_part['size']}",
        "conv=sparse",
        "status=none",
    )
    label = ""
    for line in _run("dumpe2fs", "-h", str(root_img)).splitlines():
        if line.startswith("Filesystem volume name:"):
            label = line.split(":", 1)[1].strip()
    reads = {}
    listing = _run("debugfs", "-R", "ls -p /usr/lib/modules", str(root_img))
    for version in re.findall(r"/\d+/\d+/\d+/\d+/([^/]+)/", listing):
        if version in (".", ".."):
            continue
        for name in ("modules.alias", "modules.dep"):
            reads[f"{name}:{version}"] = _run(
                "debugfs", "-R", f"cat /usr/lib/modules/{version}/{name}", str(root_img)
            )
    root_img.unlink()
    return Card(boot, reads, label)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", type=Path)
    parser.add_argument("--boot", type=Path, help="the boot partition's files")
    parser.add_argument("--root", type=Path, help="the root file system's tree")
    parser.add_argument("--root-label", default="", help="the root partition's label")
    args = parser.parse_args(argv)
    if args.image:
        for tool in ("sfdisk", "mcopy", "debugfs", "dumpe2fs"):
            if shutil.which(tool) is None:
                parser.error(f"{tool} is missing (scripts/install-deps.sh --image)")
        with tempfile.TemporaryDirectory() as work:
            return check(card_from_image(args.image, Path(work)))
    if not (args.boot and args.root):
        parser.error("give an IMAGE, or --boot and --root")
    card = card_from_dirs(args.boot, args.root)
    card.root_label = args.root_label
    return check(card)


if __name__ == "__main__":
    sys.exit(main())
