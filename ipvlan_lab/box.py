"""The lab's offline Vagrant box: Debian 12 built from Debian's own packages.

No box is downloaded: :func:`build_box` bootstraps a root file system with
mmdebstrap, turns it into a bootable disk without mounting anything or using
a loop device, packs that disk as a vagrant-libvirt box and adds it to
Vagrant. The guest's own customization lives in ``provision/box/``:
``initramfs/`` goes into the root file system before the kernel is installed,
``customize.sh`` runs on it once every package is, and ``Vagrantfile`` travels
inside the box.

The ``.box`` file is kept in the work directory after it is added, so that
the box can be added again (after :func:`remove_box`) without a rebuild; the
root file system, the raw disk and the qcow2 image are removed as soon as the
next step has consumed them, and in any case when the build ends.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipvlan_lab.errors import BoxError

#: Where the box's guest-side files live (customize hook, box Vagrantfile).
PROVISION_DIR = Path(__file__).resolve().parent.parent / "provision" / "box"

SUITE = "bookworm"
#: Package sources for the guest: the release, its updates, its security fixes.
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
#: Installed on top of the minbase variant (Recommends are not installed).
PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "openssh-server",
    "sudo",
    "procps",
    "iproute2",
    "iputils-ping",
    "iputils-arping",
    "tcpdump",
    "kmod",
    "docker.io",
    "busybox-static",
    "ca-certificates",
)
#: Left out of every package: documentation, manual pages, translations.
EXCLUDED_PATHS = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
#: Kept despite the exclusions above: the licences.
INCLUDED_PATHS = ("/usr/share/doc/*/copyright",)

#: The default hostname in the box; Vagrant renames each machine.
GUEST_HOSTNAME = "debian12"
#: The label of the root file system; GRUB and the kernel find root by it.
ROOT_LABEL = "debroot"
#: net.ifnames=0 keeps the names eth0, eth1...; AppArmor costs about 18 s of
#: boot under emulation and Docker works without it.
KERNEL_CMDLINE = "net.ifnames=0 console=ttyS0 apparmor=0"

#: The disk's virtual size: room for Docker images and containers.
DISK_GIB = 8
#: The partition starts 1 MiB in (sector 2048); GRUB's core.img sits before it.
PARTITION_OFFSET = 1024 * 1024
SECTOR = 512
#: What the build needs in the work directory at its peak, with margin.
SPACE_NEEDED = 4 * 1024**3

#: GRUB's BIOS boot files, from grub-pc-bin.
GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")
#: GRUB modules built into core.img: enough to read the partition, search it
#: by label, read grub.cfg and boot Linux, with a serial console.
GRUB_MODULES = (
    "biosdisk",
    "part_msdos",
    "ext2",
    "search",
    "search_label",
    "normal",
    "configfile",
    "linux",
    "boot",
    "serial",
    "terminal",
    "echo",
    "test",
)
#: The master boot record's boot code ends here; the partition table follows.
MBR_CODE_SIZE = 440

#: Each tool the build runs, with the Debian package that provides it.
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "qemu-img": "qemu-utils",
    "grub-mkimage": "grub-pc-bin",
    "mkfs.ext4": "e2fsprogs",
    "sfdisk": "fdisk",
    "vagrant": "vagrant",
}
#: Where Vagrant's insecure public key is shipped (Debian's package first).
VAGRANT_KEY_GLOBS = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub",
)

#: The mount table read before deleting a root file system.
MOUNTS = Path("/proc/self/mounts")
#: How many lines of a failed command's output an error quotes.
TAIL_LINES = 15
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

Log = Callable[[str], None]


@dataclass(frozen=True)
class BoxBuild:
    """The outcome of :func:`build_box`."""

    #: The box's name in Vagrant, e.g. ``ipvlan-lab/debian12``.
    name: str
    #: The ``.box`` file (when the build was skipped, it may not exist).
    path: Path
    #: True when Vagrant already had the box and nothing was built.
    skipped: bool
    #: Wall-clock seconds the call took.
    seconds: float


# --- What the build computes -------------------------------------------------


def box_file_name(name: str) -> str:
    """Return the file name of the ``.box`` for a box named ``name``."""
    return name.replace("/", "-") + ".box"


def metadata(disk_gib: int = DISK_GIB) -> dict[str, object]:
    """Return the vagrant-libvirt ``metadata.json`` contents for the box."""
    return {"provider": "libvirt", "format": "qcow2", "virtual_size": disk_gib}


def grub_config(label: str = ROOT_LABEL, cmdline: str = KERNEL_CMDLINE) -> str:
    """Return a static ``grub.cfg`` that boots the kernel at once, no menu.

    The kernel and initramfs are found through the ``/vmlinuz`` and
    ``/initrd.img`` links that Debian keeps at the root of the file system.
    """
    return (
        "# Written by ipvlan-lab's box builder: boot Debian at once, no menu.\n"
        "serial --unit=0 --speed=115200\n"
        "terminal_output serial console\n"
        "set timeout=0\n"
        f"search --no-floppy --label --set=root {label}\n"
        f"linux /vmlinuz root=LABEL={label} rw {cmdline}\n"
        "initrd /initrd.img\n"
        "boot\n"
    )


def mmdebstrap_command(rootfs: Path, pubkey: Path) -> list[str]:
    """Return the mmdebstrap command that bootstraps and customizes ``rootfs``."""
    hook = shlex.join(
        [
            "sh",
            str(PROVISION_DIR / "customize.sh"),
            "$1",
            str(pubkey),
            GUEST_HOSTNAME,
            ROOT_LABEL,
        ]
    )
    # shlex.join quoted "$1"; mmdebstrap's shell must expand it.
    hook = hook.replace("'$1'", '"$1"')
    command = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=" + ",".join(PACKAGES),
    ]
    command += [f"--dpkgopt=path-exclude={path}" for path in EXCLUDED_PATHS]
    command += [f"--dpkgopt=path-include={path}" for path in INCLUDED_PATHS]
    # The initramfs settings must be in place before the kernel is installed.
    command += [
        '--setup-hook=mkdir -p "$1/etc/initramfs-tools"',
        f"--setup-hook=sync-in {PROVISION_DIR / 'initramfs'} /etc/initramfs-tools",
    ]
    command += [f"--customize-hook={hook}", SUITE, str(rootfs), *MIRRORS]
    return command


def parse_box_list(text: str) -> list[tuple[str, str]]:
    """Return (name, provider) pairs from ``vagrant box list --machine-readable``."""
    boxes = []
    name = None
    for line in text.splitlines():
        fields = line.split(",", 3)
        if len(fields) < 4:
            continue
        kind, value = fields[2], fields[3].strip()
        if kind == "box-name":
            name = value
        elif kind == "box-provider" and name is not None:
            boxes.append((name, value))
            name = None
    return boxes


# --- Checks before a build ---------------------------------------------------


def check_prerequisites(workdir: Path) -> None:
    """Raise :class:`BoxError` unless this machine can build a box in ``workdir``.

    Checks, in order: root privileges, the tools, GRUB's BIOS files, Vagrant's
    insecure key and the free space under ``workdir``.
    """
    if os.geteuid() != 0:
        raise BoxError(
            "building the box needs root (mmdebstrap --mode=root, chroot)",
            hint="run the build as root, e.g. with sudo",
        )
    check_tools()
    find_vagrant_key()
    check_space(workdir)


def check_tools() -> None:
    """Raise :class:`BoxError` naming the first missing tool and its package."""
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise BoxError(
                f"{tool} not found on PATH; the box build needs it",
                hint=f"apt-get install {package}",
            )
    for name in ("boot.img", "moddep.lst"):
        if not (GRUB_PC_DIR / name).is_file():
            raise BoxError(
                f"GRUB's BIOS files are missing ({GRUB_PC_DIR / name} not found)",
                hint="apt-get install grub-pc-bin",
            )


def find_vagrant_key() -> Path:
    """Return the path of Vagrant's insecure public key, or raise BoxError."""
    for pattern in VAGRANT_KEY_GLOBS:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[-1]
    raise BoxError(
        "Vagrant's insecure public key (keys/vagrant.pub) not found under "
        + " or ".join(VAGRANT_KEY_GLOBS),
        hint="apt-get install vagrant",
    )


def check_space(workdir: Path, needed: int = SPACE_NEEDED) -> None:
    """Raise :class:`BoxError` unless ``workdir``'s file system has ``needed``."""
    existing = Path(workdir).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed:
        raise BoxError(
            f"only {_gib(free)} free under {existing}; "
            f"the box build needs about {_gib(needed)}",
            hint=f"free at least {_gib(needed - free)} there, "
            "or choose another work directory",
        )


# --- Vagrant -----------------------------------------------------------------


def box_exists(name: str, provider: str = "libvirt") -> bool:
    """Return whether Vagrant has a box ``name`` for ``provider``."""
    output = _capture(["vagrant", "box", "list", "--machine-readable"])
    return (name, provider) in parse_box_list(output)


def remove_box(name: str, *, log: Log = print) -> None:
    """Remove box ``name`` (all versions, libvirt) from Vagrant, if it is there.

    The copy that vagrant-libvirt uploaded into libvirt's storage pool when a
    machine was first made from the box stays there: running or stopped
    machines may still use it as their disk's backing file.
    """
    if box_exists(name):
        _run(
            ["vagrant", "box", "remove", "--force", "--all"]
            + ["--provider", "libvirt", name],
            log,
        )


# --- The build ---------------------------------------------------------------


def build_box(
    name: str, *, force: bool = False, workdir: Path, log: Log = print
) -> BoxBuild:
    """Build the Debian 12 box and add it to Vagrant as ``name`` (libvirt).

    Nothing is built when Vagrant already has the box, unless ``force``. The
    build must run as root and takes a few minutes; progress, including the
    tools' own output, goes to ``log``. Raises :class:`BoxError` when a tool,
    Vagrant's key or disk space is missing, or when a step fails.
    """
    started = time.monotonic()
    workdir = Path(workdir).absolute()
    box_path = workdir / box_file_name(name)

    if not force and box_exists(name):
        log(f"Vagrant already has box {name} (libvirt); not building it")
        return BoxBuild(name, box_path, True, time.monotonic() - started)

    check_prerequisites(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    pubkey = find_vagrant_key()
    rootfs = workdir / "rootfs"
    raw = workdir / "disk.raw"
    qcow2 = workdir / "box.img"
    partial = _partial(box_path)
    # Leftovers of an interrupted build would stop mmdebstrap.
    _clean(rootfs, raw, qcow2, partial)

    def step(text: str) -> None:
        log(f"--> [{time.monotonic() - started:4.0f} s] {text}")

    try:
        step(f"Bootstrapping Debian {SUITE} into {rootfs}")
        _run(mmdebstrap_command(rootfs, pubkey), log)
        (rootfs / "boot" / "grub").mkdir(parents=True, exist_ok=True)
        (rootfs / "boot" / "grub" / "grub.cfg").write_text(grub_config())

        step(f"Making a disk of {DISK_GIB} GiB from it")
        _make_disk(rootfs, raw, log)
        _clean(rootfs)
        _install_grub(raw, workdir, log)

        step("Converting the disk to qcow2")
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], log)
        _clean(raw)

        step(f"Packing {box_path}")
        _pack(box_path, qcow2)
    finally:
        _clean(rootfs, raw, qcow2, partial)

    step(f"Adding {box_path.name} to Vagrant as {name}")
    _run(["vagrant", "box", "add", "--force", "--name", name, box_path], log)
    seconds = time.monotonic() - started
    log(f"box {name} built and added in {seconds:.0f} s")
    return BoxBuild(name, box_path, False, seconds)


def _make_disk(rootfs: Path, raw: Path, log: Log) -> None:
    size = DISK_GIB * 1024**3
    with open(raw, "wb") as disk:
        disk.truncate(size)

    # One bootable Linux partition from sector 2048 to the end of the disk.
    start = PARTITION_OFFSET // SECTOR
    table = f"label: dos\nstart={start}, type=83, bootable\n"
    _run(["sfdisk", "--quiet", raw], log, stdin=table)

    # mke2fs fills the file system from the directory: nothing is mounted.
    fs_kib = (size - PARTITION_OFFSET) // 1024
    _run(
        ["mkfs.ext4", "-F", "-q", "-L", ROOT_LABEL, "-m", "0", "-d", rootfs]
        + ["-E", f"offset={PARTITION_OFFSET},nodiscard", raw, f"{fs_kib}k"],
        log,
    )


def _install_grub(raw: Path, workdir: Path, log: Log) -> None:
    # GRUB without grub-install: boot.img's code goes in the MBR (before the
    # partition table), core.img in the gap from sector 1 to the partition.
    core = workdir / "core.img"
    _run(
        ["grub-mkimage", "-O", "i386-pc", "-o", core]
        + ["-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES],
        log,
    )
    core_image = core.read_bytes()
    core.unlink()
    if SECTOR + len(core_image) > PARTITION_OFFSET:
        raise BoxError(
            f"GRUB's core.img ({len(core_image)} bytes) does not fit before "
            "the partition",
            hint="build it with fewer modules (ipvlan_lab.box.GRUB_MODULES)",
        )
    boot_code = (GRUB_PC_DIR / "boot.img").read_bytes()[:MBR_CODE_SIZE]
    with open(raw, "r+b") as disk:
        disk.write(boot_code)
        disk.seek(SECTOR)
        disk.write(core_image)


def _pack(box_path: Path, qcow2: Path) -> None:
    partial = _partial(box_path)
    meta = json.dumps(metadata()).encode()
    with tarfile.open(partial, "w") as box:
        box.add(qcow2, arcname="box.img")
        _add_bytes(box, "metadata.json", meta)
        _add_bytes(box, "Vagrantfile", (PROVISION_DIR / "Vagrantfile").read_bytes())
    partial.replace(box_path)


def _partial(box_path: Path) -> Path:
    # The box is written under another name, then renamed: a .box file is
    # always complete.
    return box_path.with_name(box_path.name + ".partial")


def _add_bytes(box: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    box.addfile(info, io.BytesIO(data))


def _clean(*paths: Path) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            _refuse_mounts_under(path)
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _refuse_mounts_under(path: Path) -> None:
    # Never delete through a mount point: a /dev or /proc bind mount left in
    # the root file system by an interrupted mmdebstrap would take the host's
    # files with it.
    top = str(path.resolve())
    with open(MOUNTS) as mounts:
        for line in mounts:
            point = line.split()[1].replace("\\040", " ")
            if point == top or point.startswith(top + "/"):
                raise BoxError(
                    f"{point} is still mounted; not deleting {path}",
                    hint=f"umount everything under {path}, then build again",
                )


# --- Running commands --------------------------------------------------------


def _run(command: Sequence[str | Path], log: Log, *, stdin: str | None = None) -> None:
    """Run ``command``, passing its output to ``log`` line by line.

    Standard error is merged into standard output (mmdebstrap and apt report
    progress there); a failure raises BoxError quoting the last lines.
    """
    argv = [str(part) for part in command]
    log("$ " + shlex.join(argv))
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as error:
        raise BoxError(
            f"{argv[0]} not found on PATH",
            hint=f"apt-get install {TOOLS.get(argv[0], argv[0])}",
        ) from error
    if stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for line in process.stdout:
        line = _printable(line)
        tail.append(line)
        log("    " + line)
    code = process.wait()
    if code != 0:
        raise BoxError(
            f"{shlex.join(argv)} failed with exit code {code}:\n" + "\n".join(tail),
            hint="read the command's output above; fix the cause and build "
            "again (leftovers are cleaned first)",
        )


def _printable(line: str) -> str:
    # Progress bars redraw one line with carriage returns and ANSI codes:
    # keep what the last redraw shows.
    return ANSI_ESCAPE.sub("", line.rstrip()).split("\r")[-1]


def _capture(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(
            list(command), capture_output=True, text=True, check=False
        )
    except FileNotFoundError as error:
        raise BoxError(
            f"{command[0]} not found on PATH",
            hint=f"apt-get install {TOOLS.get(command[0], command[0])}",
        ) from error
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-TAIL_LINES:])
        raise BoxError(
            f"{shlex.join(command)} failed with exit code {result.returncode}:\n{tail}",
            hint="run the command by hand to see why",
        )
    return result.stdout


def _gib(size: int) -> str:
    return f"{size / 1024**3:.1f} GiB"
