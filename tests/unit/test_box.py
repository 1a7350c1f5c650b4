"""What the box builder computes and checks, without building anything."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections import namedtuple
from pathlib import Path

import pytest

from ipvlan_lab import box
from ipvlan_lab.errors import BoxError, LabError

REPO = Path(__file__).resolve().parents[2]
DiskUsage = namedtuple("DiskUsage", "total used free")

# What `vagrant box list --machine-readable` prints (Vagrant 2.3.4).
BOX_LIST = """\
1796318162,,ui,info,ipvlan-lab/debian12 (libvirt%!(VAGRANT_COMMA) 0)
1796318162,,box-name,ipvlan-lab/debian12
1796318162,,box-provider,libvirt
1796318162,,box-version,0
1796318162,,ui,info,generic/debian12 (virtualbox%!(VAGRANT_COMMA) 4.3.12)
1796318162,,box-name,generic/debian12
1796318162,,box-provider,virtualbox
1796318162,,box-version,4.3.12
"""
NO_BOXES = (
    "1796318162,,ui,info,There are no installed boxes! Use `vagrant box add`"
    " to add some.\n"
)


@pytest.fixture
def forbid_commands(monkeypatch):
    """Fail the test if the builder tries to run any command."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected command: {args}")

    monkeypatch.setattr(box, "_run", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)


# --- Files the box is made of ------------------------------------------------


def test_metadata_is_what_vagrant_libvirt_reads():
    assert box.metadata() == {
        "provider": "libvirt",
        "format": "qcow2",
        "virtual_size": 8,
    }
    assert json.loads(json.dumps(box.metadata(6)))["virtual_size"] == 6


def test_grub_config_boots_the_kernel_by_label_with_the_lab_cmdline():
    lines = box.grub_config().splitlines()

    assert "set timeout=0" in lines
    assert "search --no-floppy --label --set=root debroot" in lines
    linux = next(line for line in lines if line.startswith("linux "))
    words = linux.split()
    assert words[1] == "/vmlinuz"
    assert "root=LABEL=debroot" in words
    assert "rw" in words
    for option in ("net.ifnames=0", "console=ttyS0", "apparmor=0"):
        assert option in words
    assert "initrd /initrd.img" in lines
    assert lines[-1] == "boot"


def test_grub_config_follows_the_label_and_cmdline_given():
    text = box.grub_config(label="other", cmdline="quiet")

    assert "--set=root other\n" in text
    assert "linux /vmlinuz root=LABEL=other rw quiet\n" in text
    assert "debroot" not in text


def test_box_file_name_has_no_slash():
    assert box.box_file_name("ipvlan-lab/debian12") == "ipvlan-lab-debian12.box"


def test_pack_makes_a_vagrant_libvirt_box(tmp_path):
    qcow2 = tmp_path / "box.img"
    qcow2.write_bytes(b"QFI\xfb fake image")
    box_path = tmp_path / "out.box"

    box._pack(box_path, qcow2)

    with tarfile.open(box_path) as packed:
        assert sorted(packed.getnames()) == ["Vagrantfile", "box.img", "metadata.json"]
        meta = json.load(packed.extractfile("metadata.json"))
        image = packed.extractfile("box.img").read()
        vagrantfile = packed.extractfile("Vagrantfile").read().decode()
    assert meta == box.metadata()
    assert image == qcow2.read_bytes()
    assert 'lv.disk_bus = "virtio"' in vagrantfile
    assert not (tmp_path / "out.box.partial").exists()


def test_guest_side_files_are_in_place():
    customize = box.PROVISION_DIR / "customize.sh"
    hook = box.PROVISION_DIR / "initramfs" / "hooks" / "ipvlan-lab"
    conf = box.PROVISION_DIR / "initramfs" / "conf.d" / "ipvlan-lab.conf"

    assert customize.is_file()
    # initramfs-tools only runs hooks that are executable.
    assert os.access(hook, os.X_OK)
    assert "virtio_blk" in hook.read_text()
    assert "MODULES=list" in conf.read_text()
    for script in (customize, REPO / "provision/node.sh", REPO / "provision/lan.sh"):
        subprocess.run(["bash", "-n", str(script)], check=True)


# --- The mmdebstrap command --------------------------------------------------


def test_mmdebstrap_command_builds_bookworm_minbase_as_root(tmp_path):
    command = box.mmdebstrap_command(tmp_path / "rootfs", Path("/keys/vagrant.pub"))

    assert command[0] == "mmdebstrap"
    assert "--mode=root" in command
    assert "--variant=minbase" in command
    suite_at = command.index("bookworm")
    assert command[suite_at + 1] == str(tmp_path / "rootfs")
    assert any("debian-security bookworm-security" in m for m in command[suite_at:])


def test_mmdebstrap_command_installs_the_guest_packages():
    command = box.mmdebstrap_command(Path("/r"), Path("/k.pub"))

    include = next(arg for arg in command if arg.startswith("--include="))
    packages = include.removeprefix("--include=").split(",")
    for package in (
        "linux-image-amd64",
        "systemd-sysv",
        "openssh-server",
        "docker.io",
        "busybox-static",
        "iputils-arping",
        "tcpdump",
    ):
        assert package in packages
    assert "ifupdown" not in packages


def test_mmdebstrap_command_leaves_out_docs_man_and_locales():
    command = box.mmdebstrap_command(Path("/r"), Path("/k.pub"))

    for path in ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*"):
        assert f"--dpkgopt=path-exclude={path}" in command


def test_customize_hook_gets_the_rootfs_and_the_key():
    command = box.mmdebstrap_command(Path("/r"), Path("/keys/vagrant.pub"))

    hook = next(arg for arg in command if arg.startswith("--customize-hook="))
    # "$1" must stay for mmdebstrap's shell to expand, not be quoted away.
    assert '"$1"' in hook and "'$1'" not in hook
    assert str(box.PROVISION_DIR / "customize.sh") in hook
    assert hook.endswith("/keys/vagrant.pub debian12 debroot")


# --- Checks before building --------------------------------------------------


@pytest.mark.parametrize("tool, package", sorted(box.TOOLS.items()))
def test_a_missing_tool_names_its_package(monkeypatch, tool, package):
    monkeypatch.setattr(
        box.shutil, "which", lambda name: None if name == tool else f"/usr/bin/{name}"
    )

    with pytest.raises(BoxError) as caught:
        box.check_tools()

    assert tool in caught.value.message
    assert caught.value.hint == f"apt-get install {package}"


def test_missing_grub_bios_files_name_grub_pc_bin(monkeypatch, tmp_path):
    monkeypatch.setattr(box.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(box, "GRUB_PC_DIR", tmp_path)

    with pytest.raises(BoxError) as caught:
        box.check_tools()

    assert "boot.img" in caught.value.message
    assert caught.value.hint == "apt-get install grub-pc-bin"


def test_too_little_space_says_how_much_to_free(monkeypatch, tmp_path):
    monkeypatch.setattr(box.shutil, "disk_usage", lambda path: DiskUsage(0, 0, 1024**3))

    with pytest.raises(BoxError) as caught:
        box.check_space(tmp_path / "not" / "made" / "yet")

    assert "1.0 GiB free" in caught.value.message
    assert str(tmp_path) in caught.value.message
    assert "free at least 3.0 GiB" in caught.value.hint


def test_enough_space_passes(monkeypatch, tmp_path):
    seen = []

    def usage(path):
        seen.append(Path(path))
        return DiskUsage(0, 0, 5 * 1024**3)

    monkeypatch.setattr(box.shutil, "disk_usage", usage)

    box.check_space(tmp_path / "box")

    # The work directory does not exist yet: its nearest parent is measured.
    assert seen == [tmp_path]


def test_building_needs_root(monkeypatch, tmp_path):
    monkeypatch.setattr(box.os, "geteuid", lambda: 1000)

    with pytest.raises(BoxError) as caught:
        box.check_prerequisites(tmp_path)

    assert "root" in caught.value.message
    assert "sudo" in caught.value.hint


def test_vagrant_key_is_found_or_named(monkeypatch, tmp_path):
    for version in ("2.3.4", "2.3.7"):
        keys = tmp_path / f"vagrant-{version}" / "keys"
        keys.mkdir(parents=True)
        (keys / "vagrant.pub").write_text("ssh-rsa AAAA vagrant insecure public key\n")
    monkeypatch.setattr(
        box, "VAGRANT_KEY_GLOBS", (f"{tmp_path}/vagrant-*/keys/vagrant.pub",)
    )

    assert box.find_vagrant_key() == tmp_path / "vagrant-2.3.7/keys/vagrant.pub"

    monkeypatch.setattr(box, "VAGRANT_KEY_GLOBS", (f"{tmp_path}/none-*/vagrant.pub",))
    with pytest.raises(BoxError) as caught:
        box.find_vagrant_key()
    assert caught.value.hint == "apt-get install vagrant"


def test_box_error_is_a_lab_error_with_its_hint_in_the_text():
    error = BoxError("sfdisk not found on PATH", hint="apt-get install fdisk")

    assert isinstance(error, LabError)
    assert str(error) == "sfdisk not found on PATH\nhint: apt-get install fdisk"


# --- Vagrant's box list ------------------------------------------------------


def test_parse_box_list_pairs_names_with_providers():
    assert box.parse_box_list(BOX_LIST) == [
        ("ipvlan-lab/debian12", "libvirt"),
        ("generic/debian12", "virtualbox"),
    ]
    assert box.parse_box_list(NO_BOXES) == []


def test_box_exists_only_for_the_right_provider(monkeypatch):
    monkeypatch.setattr(box, "_capture", lambda command: BOX_LIST)

    assert box.box_exists("ipvlan-lab/debian12")
    assert not box.box_exists("generic/debian12")
    assert box.box_exists("generic/debian12", provider="virtualbox")
    assert not box.box_exists("ipvlan-lab/other")


def test_box_exists_without_vagrant_says_what_to_install(monkeypatch):
    def no_vagrant(*args, **kwargs):
        raise FileNotFoundError("vagrant")

    monkeypatch.setattr(subprocess, "run", no_vagrant)

    with pytest.raises(BoxError) as caught:
        box.box_exists("ipvlan-lab/debian12")

    assert "vagrant not found" in caught.value.message
    assert caught.value.hint == "apt-get install vagrant"


def test_remove_box_removes_every_version_for_libvirt_only_if_present(monkeypatch):
    commands = []
    monkeypatch.setattr(box, "_run", lambda command, log: commands.append(command))
    monkeypatch.setattr(box, "_capture", lambda command: BOX_LIST)

    box.remove_box("ipvlan-lab/debian12", log=lambda line: None)
    box.remove_box("ipvlan-lab/absent", log=lambda line: None)

    assert commands == [
        ["vagrant", "box", "remove", "--force", "--all"]
        + ["--provider", "libvirt", "ipvlan-lab/debian12"]
    ]


# --- build_box without building ----------------------------------------------


def test_build_is_skipped_when_vagrant_has_the_box(
    monkeypatch, tmp_path, forbid_commands
):
    monkeypatch.setattr(box, "box_exists", lambda name: True)
    lines = []

    result = box.build_box("ipvlan-lab/debian12", workdir=tmp_path, log=lines.append)

    assert result.skipped
    assert result.name == "ipvlan-lab/debian12"
    assert result.path == tmp_path / "ipvlan-lab-debian12.box"
    assert result.seconds >= 0
    assert any("not building" in line for line in lines)


def test_forced_build_checks_tools_before_running_anything(
    monkeypatch, tmp_path, forbid_commands
):
    monkeypatch.setattr(box, "box_exists", lambda name: True)
    monkeypatch.setattr(box.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        box.shutil, "which", lambda name: None if name == "mmdebstrap" else name
    )

    with pytest.raises(BoxError) as caught:
        box.build_box("ipvlan-lab/debian12", force=True, workdir=tmp_path / "w")

    assert caught.value.hint == "apt-get install mmdebstrap"


# --- Steps that need no root -------------------------------------------------


def test_grub_goes_before_the_partition_and_keeps_the_table(monkeypatch, tmp_path):
    raw = tmp_path / "disk.raw"
    table = bytes(range(72))  # disk signature, partition table, 0x55AA
    with open(raw, "wb") as disk:
        disk.truncate(2 * 1024 * 1024)
        disk.seek(440)
        disk.write(table)
    grub = tmp_path / "grub"
    grub.mkdir()
    (grub / "boot.img").write_bytes(b"B" * 512)
    monkeypatch.setattr(box, "GRUB_PC_DIR", grub)

    def fake_mkimage(command, log):
        out = Path(command[command.index("-o") + 1])
        out.write_bytes(b"C" * 3000)

    monkeypatch.setattr(box, "_run", fake_mkimage)

    box._install_grub(raw, tmp_path, log=lambda line: None)

    data = raw.read_bytes()
    assert data[:440] == b"B" * 440
    assert data[440:512] == table
    assert data[512 : 512 + 3000] == b"C" * 3000
    assert data[512 + 3000] == 0
    assert not (tmp_path / "core.img").exists()


def test_a_core_image_too_big_for_the_gap_is_refused(monkeypatch, tmp_path):
    raw = tmp_path / "disk.raw"
    raw.write_bytes(bytes(4096))
    monkeypatch.setattr(
        box,
        "_run",
        lambda command, log: Path(command[command.index("-o") + 1]).write_bytes(
            bytes(box.PARTITION_OFFSET)
        ),
    )

    with pytest.raises(BoxError, match="does not fit"):
        box._install_grub(raw, tmp_path, log=lambda line: None)


def test_run_streams_output_and_quotes_its_tail_on_failure():
    lines = []
    command = ["sh", "-c", "echo step one; echo broken >&2; exit 3"]

    with pytest.raises(BoxError) as caught:
        box._run(command, lines.append)

    assert lines[0] == "$ sh -c 'echo step one; echo broken >&2; exit 3'"
    assert "    step one" in lines
    assert "exit code 3" in caught.value.message
    assert caught.value.message.endswith("step one\nbroken")


def test_run_feeds_stdin():
    lines = []

    box._run(["cat"], lines.append, stdin="label: dos\n")

    assert lines[1:] == ["    label: dos"]


def test_progress_bars_are_reduced_to_text():
    assert box._printable("\x1b[KProgress: 81% (Rate: 396M/s)\n") == (
        "Progress: 81% (Rate: 396M/s)"
    )
    assert box._printable("10%\r20%\rdone\n") == "done"


def test_clean_never_deletes_through_a_mount(monkeypatch, tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "proc").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"proc {rootfs}/proc proc rw 0 0\n")
    monkeypatch.setattr(box, "MOUNTS", mounts)

    with pytest.raises(BoxError) as caught:
        box._clean(rootfs)

    assert f"{rootfs}/proc is still mounted" in caught.value.message
    assert (rootfs / "proc").is_dir()

    mounts.write_text("proc /proc proc rw 0 0\n")
    box._clean(rootfs, tmp_path / "absent.raw")
    assert not rootfs.exists()


# --- The provision scripts refuse to start without their parameters ----------
# They run on this machine with an empty PATH: should one ever get past its
# checks, it cannot touch this machine's network, modules or packages.


@pytest.mark.parametrize(
    "script, env, missing",
    [
        ("node.sh", {"LAB_NODE": "host1", "LAB_NIC": "eth1"}, "LAB_ADDRESS"),
        ("node.sh", {}, "LAB_NODE"),
        ("lan.sh", {"LAB_NODE": "lan", "LAB_NIC": "eth1"}, "LAB_ADDRESSES"),
    ],
)
def test_provision_scripts_name_a_missing_parameter(tmp_path, script, env, missing):
    result = subprocess.run(
        ["/bin/bash", str(REPO / "provision" / script)],
        env={"PATH": str(tmp_path), **env},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert f"{missing} is not set; fix:" in result.stdout
    assert result.stdout.startswith(env.get("LAB_NODE", ""))


def test_node_script_refuses_an_unknown_docker_source(tmp_path):
    env = {
        "PATH": str(tmp_path),
        "LAB_NODE": "host1",
        "LAB_NIC": "eth1",
        "LAB_ADDRESS": "192.168.4.236/24",
        "DOCKER_SOURCE": "snap",
    }

    result = subprocess.run(
        ["/bin/bash", str(REPO / "provision" / "node.sh")],
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 2
    assert result.stdout.startswith("host1: DOCKER_SOURCE=snap is not a source")
