"""``${dotted.name}`` placeholders: lookup, rendering, address arithmetic."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from ipvlan_lab import templates
from ipvlan_lab.errors import ScenarioError
from ipvlan_lab.templates import Hosts

CONTEXT = Path(__file__).parent / "data" / "scenarios" / "context.yaml"


@pytest.fixture
def context() -> dict:
    data = yaml.safe_load(CONTEXT.read_text())
    data["lab"]["ip"] = Hosts(data["lab"]["subnet"])
    data["vlan"]["ip"] = Hosts(data["vlan"]["subnet"])
    return data


def test_hosts_counts_from_the_network_address():
    hosts = Hosts(ipaddress.ip_network("192.168.4.0/24"))
    assert hosts["101"] == "192.168.4.101"
    assert hosts["1"] == "192.168.4.1"
    assert hosts["254"] == "192.168.4.254"
    assert len(hosts) == 254
    assert list(hosts)[:2] == ["1", "2"]


@pytest.mark.parametrize("key", ["0", "255", "-1", "x", "1.5"])
def test_hosts_refuses_numbers_outside_the_subnet(key):
    with pytest.raises(KeyError):
        Hosts("192.168.4.0/24")[key]


def test_hosts_of_a_small_subnet():
    hosts = Hosts("10.0.0.0/30")
    assert list(hosts) == ["1", "2"]
    assert hosts.describe() == "a host number from 1 to 2 of 10.0.0.0/30"


def test_names_in_order_once_each():
    text = "${lab.ip.101} ${nic} ${lab.ip.101} $${HOME} ${node.vlan_address}"
    assert templates.names(text) == ["lab.ip.101", "nic", "node.vlan_address"]


def test_names_refuses_a_malformed_placeholder():
    with pytest.raises(ScenarioError, match=r"malformed placeholder '\$\{HOME:-x\}'"):
        templates.names("echo ${HOME:-x}")


def test_render_fills_in_values(context):
    text = (
        "docker network create -d ipvlan --subnet=${lab.subnet} "
        "--gateway=${lab.gateway} -o parent=${host1.nic} --ip=${lab.ip.101}"
    )
    assert templates.render(text, context) == (
        "docker network create -d ipvlan --subnet=192.168.4.0/24 "
        "--gateway=192.168.4.1 -o parent=eth1 --ip=192.168.4.101"
    )


def test_render_keeps_a_literal_dollar_brace(context):
    assert templates.render("echo $${HOME} ${vlan.id}", context) == "echo ${HOME} 100"


def test_render_tolerates_spaces_inside_braces(context):
    assert templates.render("${ vlan.ip.201 }", context) == "192.168.100.201"


def test_unknown_name_lists_what_that_level_knows(context):
    with pytest.raises(ScenarioError) as caught:
        templates.render("--gateway=${lab.gatewya}", context)
    assert caught.value.message == (
        "unknown name ${lab.gatewya}: no 'gatewya' in lab "
        "(known: subnet, prefix, gateway, ip)"
    )


def test_unknown_top_level_name(context):
    with pytest.raises(ScenarioError) as caught:
        templates.validate("${host3.address}", context)
    assert caught.value.message == (
        "unknown name ${host3.address}: no 'host3' in the top level "
        "(known: lab, vlan, host1, host2, lan)"
    )


def test_address_out_of_range_says_the_range(context):
    with pytest.raises(ScenarioError) as caught:
        templates.render("${vlan.ip.256}", context)
    assert caught.value.message == (
        "unknown name ${vlan.ip.256}: no '256' in vlan.ip "
        "(known: a host number from 1 to 254 of 192.168.100.0/24)"
    )


def test_a_group_is_not_a_value(context):
    with pytest.raises(ScenarioError, match=r"\$\{lab\} is a group, not a value"):
        templates.render("${lab}", context)


def test_going_below_a_value(context):
    with pytest.raises(ScenarioError, match="lab.gateway is a value, not a group"):
        templates.render("${lab.gateway.x}", context)


def test_validate_accepts_values_not_known_yet(context):
    context["host1"]["nic"] = None
    context["host2"]["nic"] = "<nic>"
    templates.validate("${host1.nic} ${host2.nic}", context)
    assert not templates.is_known("${host1.nic}", context)
    assert not templates.is_known("${host2.nic}", context)
    assert templates.is_known("${host1.address} ${lab.ip.7}", context)


def test_render_refuses_a_value_not_known_yet(context):
    context["host1"]["nic"] = None
    with pytest.raises(ScenarioError, match=r"\$\{host1.nic\} has no value yet"):
        templates.render("${host1.nic}", context)


def test_render_value_renders_keys_and_nested_items(context):
    value = {"${lab.ip.101}": ["${host1.mac}", 3], "plain": {"k": "${vlan.id}"}}
    assert templates.render_value(value, context) == {
        "192.168.4.101": ["52:54:00:4c:00:01", 3],
        "plain": {"k": "100"},
    }


def test_for_node_adds_node_and_nic(context):
    here = templates.for_node(context, "host2")
    assert templates.render("${nic} ${node.vlan_address}", here) == "eth1 192.168.15.51"
    assert "node" not in context


def test_for_node_refuses_an_unknown_node(context):
    with pytest.raises(ScenarioError, match=r"unknown node 'host9' \(known: host1"):
        templates.for_node(context, "host9")


def test_nodes_and_docker_hosts(context):
    assert templates.nodes(context) == ["host1", "host2", "lan"]
    assert templates.docker_hosts(context) == ["host1", "host2"]


def test_a_role_decides_which_nodes_are_docker_hosts(context):
    context["lan"]["role"] = "docker"
    context["host2"]["role"] = "lan"
    assert templates.docker_hosts(context) == ["host1", "lan"]
