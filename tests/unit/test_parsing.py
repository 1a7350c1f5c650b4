"""Reading command output: canned ping, nslookup, ip -j, docker and tcpdump."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipvlan_lab import parsing
from ipvlan_lab.errors import NodeError
from ipvlan_lab.parsing import Ping

DATA = Path(__file__).parent / "data" / "parsing"


def canned(name: str) -> str:
    return (DATA / name).read_text()


# ping


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ping-busybox-ok.txt", Ping(2, 2, 0.0, 0.059, 0, "127.0.0.1")),
        ("ping-iputils-ok.txt", Ping(2, 2, 0.0, 0.037, 0, "127.0.0.1")),
        ("ping-busybox-partial.txt", Ping(4, 2, 50.0, 0.076, 0, "127.0.0.1")),
        ("ping-iputils-partial.txt", Ping(4, 2, 50.0, 0.037, 0, "127.0.0.1")),
        ("ping-busybox-name-ok.txt", Ping(2, 2, 0.0, 0.146, 0, "127.0.0.1")),
        ("ping-iputils-name-ok.txt", Ping(2, 2, 0.0, 0.048, 0, "127.0.0.1")),
        (
            "ping-busybox-no-reply.txt",
            Ping(2, 0, 100.0, None, 0, "127.0.0.1", "no-reply"),
        ),
        (
            "ping-iputils-no-reply.txt",
            Ping(2, 0, 100.0, None, 0, "127.0.0.1", "no-reply"),
        ),
        (
            "ping-iputils-host-unreachable.txt",
            Ping(3, 0, 100.0, None, 3, "192.168.4.50", "host-unreachable"),
        ),
        (
            "ping-busybox-network-unreachable.txt",
            Ping(0, 0, address="127.0.0.1", problem="network-unreachable"),
        ),
        (
            "ping-iputils-network-unreachable.txt",
            Ping(0, 0, problem="network-unreachable"),
        ),
        ("ping-busybox-bad-address.txt", Ping(0, 0, problem="unresolved")),
        ("ping-iputils-name-failure.txt", Ping(0, 0, problem="unresolved")),
        ("ping-iputils-unknown-host.txt", Ping(0, 0, problem="unresolved")),
    ],
)
def test_parse_ping(name, expected):
    assert parsing.parse_ping(canned(name)) == expected


def test_reachable_needs_one_reply():
    assert parsing.parse_ping(canned("ping-busybox-partial.txt")).observed == (
        "reachable"
    )
    no_reply = parsing.parse_ping(canned("ping-busybox-no-reply.txt"))
    assert (no_reply.reachable, no_reply.resolved, no_reply.observed) == (
        False,
        True,
        "unreachable",
    )


def test_an_unresolved_name_is_unreachable_but_told_apart():
    ping = parsing.parse_ping(canned("ping-busybox-bad-address.txt"))
    assert ping.observed == "unreachable"
    assert not ping.resolved


@pytest.mark.parametrize("output", [canned("ping-docker-no-container.txt"), ""])
def test_parse_ping_refuses_what_is_not_ping(output):
    with pytest.raises(NodeError, match="cannot read this ping output"):
        parsing.parse_ping(output)


# nslookup


@pytest.mark.parametrize(
    ("name", "addresses", "status", "observed"),
    [
        ("nslookup-ok.txt", ["192.168.4.102"], "resolved", "resolves"),
        ("nslookup-old-ok.txt", ["192.168.4.102"], "resolved", "resolves"),
        ("nslookup-nxdomain.txt", [], "nxdomain", "nxdomain"),
        ("nslookup-servfail.txt", [], "servfail", "nxdomain"),
        ("nslookup-refused.txt", [], "refused", "nxdomain"),
        ("nslookup-old-cant-resolve.txt", [], "nxdomain", "nxdomain"),
        ("nslookup-no-server.txt", [], "no-answer", "no-answer"),
    ],
)
def test_parse_nslookup(name, addresses, status, observed):
    lookup = parsing.parse_nslookup(canned(name))
    assert (lookup.addresses, lookup.status, lookup.observed) == (
        addresses,
        status,
        observed,
    )


def test_nslookup_names_the_server_and_the_name():
    lookup = parsing.parse_nslookup(canned("nslookup-ok.txt"))
    assert (lookup.server, lookup.name) == ("127.0.0.11", "test102")
    failed = parsing.parse_nslookup(canned("nslookup-nxdomain.txt"))
    assert failed.name == "test201"


def test_parse_nslookup_refuses_what_is_not_nslookup():
    with pytest.raises(NodeError, match="cannot read this nslookup output"):
        parsing.parse_nslookup("OCI runtime exec failed: exec failed")


# ip -j


def test_parse_links_real_output():
    links = parsing.parse_links(canned("ip-link-d.json"))
    assert [link.ifname for link in links] == ["lo", "enp0s8", "eth1", "mv0"]
    eth1 = links[2]
    assert (eth1.mac, eth1.operstate, eth1.kind, eth1.link) == (
        "52:54:00:12:34:56",
        "UP",
        "veth",
        "enp0s8",
    )
    assert links[3].kind == "macvlan"
    assert parsing.parse_links(canned("ip-link.json"))[2].kind is None


def test_parse_links_of_a_lab_host():
    links = {
        link.ifname: link
        for link in parsing.parse_links(canned("guest-eth-link-d.json"))
    }
    assert links["eth1.100"].kind == "vlan"
    assert links["eth1.100"].link == "eth1"
    assert links["ipvl-host"].kind == "ipvlan"
    assert links["eth1"].kind is None
    assert links["docker0"].flags[0] == "NO-CARRIER"


def test_parse_addresses():
    addresses = parsing.parse_addresses(canned("ip-addr.json"))
    assert [str(a) for a in addresses if a.family == "inet"] == [
        "127.0.0.1/8",
        "192.168.4.236/24",
    ]
    guest = parsing.parse_addresses(canned("guest-eth-addr.json"))
    assert [(a.ifname, str(a)) for a in guest] == [
        ("lo", "127.0.0.1/8"),
        ("eth0", "192.168.121.23/24"),
        ("eth1", "192.168.4.236/24"),
        ("docker0", "172.17.0.1/16"),
        ("eth1.100", "192.168.15.50/24"),
    ]


def test_parse_neighbours_skips_entries_without_a_mac():
    assert parsing.parse_neighbours(canned("ip-neigh.json")) == {
        "192.168.4.199": "52:54:00:00:01:99",
        "192.168.4.101": "52:54:00:12:34:57",
    }
    lan = parsing.parse_neighbours(canned("lan-neigh.json"))
    assert {lan[a] for a in ("192.168.4.101", "192.168.4.102", "192.168.4.236")} == {
        "52:54:00:4c:00:01"
    }
    assert "192.168.4.50" not in lan


def test_parse_links_refuses_what_is_not_json():
    with pytest.raises(NodeError, match="ip -j link printed no JSON"):
        parsing.parse_links('Option "-j" is unknown, try "ip -help".')


# find_nic


@pytest.mark.parametrize("links_file", ["guest-eth-link-d.json", "guest-eth-link.json"])
def test_find_nic_by_mac_prefers_the_parent(links_file):
    links = parsing.parse_links(canned(links_file))
    addresses = parsing.parse_addresses(canned("guest-eth-addr.json"))
    assert parsing.find_nic(links, addresses, mac="52:54:00:4C:00:01") == "eth1"


def test_find_nic_by_mac_with_virtualbox_names():
    links = parsing.parse_links(canned("guest-enp-link.json"))
    addresses = parsing.parse_addresses(canned("guest-enp-addr.json"))
    assert parsing.find_nic(links, addresses, mac="08:00:27:4c:00:02") == "enp0s8"


def test_find_nic_by_address():
    links = parsing.parse_links(canned("guest-eth-link.json"))
    addresses = parsing.parse_addresses(canned("guest-eth-addr.json"))
    assert parsing.find_nic(links, addresses, address="192.168.4.236/24") == "eth1"
    found = parsing.find_nic(
        links, addresses, mac="52:54:00:ff:ff:ff", address="192.168.4.236"
    )
    assert found == "eth1"


def test_find_nic_lists_what_it_found():
    links = parsing.parse_links(canned("guest-enp-link.json"))
    addresses = parsing.parse_addresses(canned("guest-enp-addr.json"))
    with pytest.raises(NodeError) as caught:
        parsing.find_nic(links, addresses, mac="52:54:00:4c:00:01")
    assert caught.value.message == (
        "no NIC with MAC 52:54:00:4c:00:01 (found: enp0s3 08:00:27:11:22:33 "
        "10.0.2.15/24, enp0s8 08:00:27:4c:00:02)"
    )


def test_find_nic_refuses_two_nics_with_one_mac():
    links = parsing.parse_links(canned("ip-link.json"))
    for link in links:
        if link.ifname == "enp0s8":
            link.mac = "52:54:00:12:34:56"
            link.link = None
    links[2].link = None
    with pytest.raises(NodeError, match="several NICs have MAC 52:54:00:12:34:56"):
        parsing.find_nic(links, [], mac="52:54:00:12:34:56")


# docker inspect


def test_parse_network():
    network = parsing.parse_network(canned("docker-network-inspect.json"))
    assert network.fields() == {
        "driver": "ipvlan",
        "mode": "l2",
        "parent": "eth1",
        "subnet": "192.168.4.0/24",
        "gateway": "192.168.4.1",
    }


def test_parse_network_defaults_the_mode():
    network = parsing.parse_network(canned("docker-network-inspect-default-mode.json"))
    assert (network.mode, network.parent, network.subnets) == (
        "l2",
        "di-4f1d3c0a9b2e",
        ["172.18.0.0/16"],
    )


def test_parse_network_refuses_an_empty_answer():
    with pytest.raises(NodeError, match="no list of entries"):
        parsing.parse_network("[]")


def test_parse_container():
    container = parsing.parse_container(canned("docker-container-inspect.json"))
    assert (container.name, container.running, container.address) == (
        "test101",
        True,
        "192.168.4.101",
    )
    assert container.networks == {"eth0_1": ("192.168.4.101", None)}


# tcpdump


def test_parse_capture_real_output():
    capture = parsing.parse_capture(canned("tcpdump-icmp.txt"))
    assert capture.captured == 4
    assert len(capture.packets) == 4
    assert capture.contains("ICMP echo reply")
    assert not capture.contains("listening on")


def test_parse_capture_nothing():
    capture = parsing.parse_capture(canned("tcpdump-nothing.txt"))
    assert (capture.packets, capture.captured) == ([], 0)


def test_parse_capture_vlan_tags():
    capture = parsing.parse_capture(canned("tcpdump-vlan.txt"))
    assert capture.captured == 2
    assert all("vlan 100" in line for line in capture.packets)
    assert capture.contains("ethertype 802.1Q")
