"""The lab's state file and its lock."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipvlan_lab import state
from ipvlan_lab.errors import StateError
from ipvlan_lab.state import State, lock


def test_no_file_is_an_empty_state_and_reading_writes_nothing(tmp_path):
    found = State(tmp_path / "lab")
    assert found.data == {"version": 1, "made": {}, "nodes": {}, "lab": {}}
    assert not (tmp_path / "lab").exists()


def test_save_writes_and_reads_back(tmp_path):
    first = State(tmp_path)
    first.nodes["host1"] = {"nic": "eth1"}
    first.data["lab"]["provider"] = "libvirt-qemu"
    first.save()
    again = State(tmp_path)
    assert again.nodes == {"host1": {"nic": "eth1"}}
    assert again.data["lab"]["provider"] == "libvirt-qemu"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_save_leaves_the_old_file_and_no_temporary_one(tmp_path, monkeypatch):
    kept = State(tmp_path)
    kept.data["lab"]["provider"] = "virtualbox"
    kept.save()
    before = (tmp_path / "state.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(state.json, "dump", broken)
    kept.data["lab"]["provider"] = "libvirt-kvm"
    with pytest.raises(OSError, match="no space"):
        kept.save()
    assert (tmp_path / "state.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"version": 1, "made": {', "is unreadable"),
        ("", "is unreadable"),
        ('{"version": 2, "made": {}, "nodes": {}, "lab": {}}', "not one this version"),
        ("[1, 2]", "not one this version"),
    ],
    ids=["truncated", "empty", "newer-version", "not-a-mapping"],
)
def test_a_state_file_that_cannot_be_trusted(tmp_path, text, expected):
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(StateError) as caught:
        State(tmp_path)
    assert expected in caught.value.message
    assert str(tmp_path / "state.json") in caught.value.message
    assert "invoke down" in caught.value.hint


def test_record_made_forget_are_saved_at_once(tmp_path):
    lab = State(tmp_path)
    lab.record("libvirt-network", "ipvlan-lab")
    lab.record("daemon", "libvirtd", pid=42)
    on_disk = State(tmp_path)
    assert set(on_disk.made("libvirt-network")) == {"ipvlan-lab"}
    assert on_disk.made("daemon")["libvirtd"]["pid"] == 42
    assert on_disk.made("nothing") == {}

    lab.forget("daemon", "libvirtd")
    lab.forget("daemon", "never-made")
    assert State(tmp_path).made("daemon") == {}


def test_clear_forgets_everything(tmp_path):
    lab = State(tmp_path)
    lab.record("libvirt-network", "ipvlan-lab")
    lab.nodes["lan"] = {"nic": "eth1"}
    lab.clear()
    assert State(tmp_path).data["made"] == {}
    assert State(tmp_path).nodes == {}


# The lock


def test_a_second_holder_is_refused_and_told_who_holds_it(tmp_path):
    with lock(tmp_path, what="invoke up"):
        with pytest.raises(StateError) as caught:
            with lock(tmp_path, wait=0, what="invoke down"):
                pytest.fail("two holders of the lab's lock")
    error = caught.value
    assert error.message.startswith("the lab is busy: invoke up (pid ")
    assert str(tmp_path / "lock") in error.message
    assert error.hint == "wait for it to finish, then run invoke down again"


def test_the_lock_is_free_again_once_released(tmp_path):
    with lock(tmp_path, what="invoke up"):
        pass
    with lock(tmp_path, wait=0, what="invoke down"):
        assert "invoke down" in (tmp_path / "lock").read_text()
    assert (tmp_path / "lock").read_text() == ""


def test_another_process_holding_the_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from ipvlan_lab.state import lock\n"
            "with lock(Path(sys.argv[1]), what='invoke verify'):\n"
            "    print('held', flush=True); time.sleep(30)",
            str(tmp_path),
        ],
        cwd=Path(state.__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StateError) as caught:
            with lock(tmp_path, wait=0.6, what="invoke up"):
                pass
        assert time.monotonic() - started >= 0.5, "a wait was asked for"
        assert f"invoke verify (pid {holder.pid})" in caught.value.message
    finally:
        holder.kill()
        holder.wait()
    with lock(tmp_path, wait=0, what="invoke up"):
        pass


def test_state_json_is_plain_sorted_json(tmp_path):
    lab = State(tmp_path)
    lab.data["lab"]["ready"] = True
    lab.save()
    text = (tmp_path / "state.json").read_text()
    assert json.loads(text)["lab"]["ready"] is True
    assert list(json.loads(text)) == sorted(json.loads(text))
