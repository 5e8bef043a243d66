"""ovs-vsctl: outputs in OVS's format, errors in OVS's words, one transaction per invocation."""

from __future__ import annotations

import re

import pytest

from ctswitch.control import ofctl, vsctl
from ctswitch.datapath.switch import Switch


def v(sw, *argv):
    return vsctl.run(sw, list(argv))


def ok(sw, *argv) -> str:
    r = v(sw, *argv)
    assert (r.code, r.err) == (0, ""), r.err
    return r.out


def err(sw, *argv, code=1) -> str:
    r = v(sw, *argv)
    assert r.code == code and r.out == ""
    return r.err


def flows(sw, br="ctBr") -> list[str]:
    out = ofctl.run(sw, ["dump-flows", br, "--no-stats"]).out
    return [ln.strip() for ln in out.splitlines() if "reply" not in ln]


@pytest.fixture()
def sw():
    s = Switch()
    ok(s, "add-br", "ctBr")
    ok(s, "add-port", "ctBr", "p0")
    ok(s, "add-port", "ctBr", "pf0hpf")
    return s


def test_show_layout(sw):
    ok(sw, "set-fail-mode", "ctBr", "secure")
    ok(sw, "set", "Interface", "p0", "type=dpdk", "options:n_rxq=2")
    out = ok(sw, "show").splitlines()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", out[0])
    assert out[1:] == [
        "    Bridge ctBr",
        "        fail_mode: secure",
        "        Port ctBr",
        "            Interface ctBr",
        "                type: internal",
        "        Port p0",
        "            Interface p0",
        "                type: dpdk",
        '                options: {n_rxq="2"}',
        "        Port pf0hpf",
        "            Interface pf0hpf",
        '    ovs_version: "3.1.0"',
    ]
    assert ok(sw, "show").splitlines()[0] == out[0]  # the row's UUID is stable


def test_ports_numbered_from_1_and_ofport_request(sw):
    br = sw.bridges["ctBr"]
    assert {p.name: p.ofport for p in br.ports.values()} == {"ctBr": 0xFFFE, "p0": 1, "pf0hpf": 2}
    ok(sw, "add-port", "ctBr", "p7", "--", "set", "Interface", "p7", "ofport_request=7")
    assert br.ports["p7"].ofport == 7 and br.by_no[7].name == "p7" and 3 not in br.by_no
    assert ok(sw, "get", "Interface", "p7", "ofport") == "7\n"
    ok(sw, "set", "Interface", "p7", "ofport_request=1")  # taken: the port keeps its number, as in OVS
    assert br.ports["p7"].ofport == 7


def test_lists(sw):
    ok(sw, "add-br", "abc")
    assert ok(sw, "list-br") == "abc\nctBr\n"
    assert ok(sw, "list-ports", "ctBr") == "p0\npf0hpf\n"
    assert ok(sw, "list-ifaces", "ctBr") == "p0\npf0hpf\n"
    assert ok(sw, "port-to-br", "pf0hpf") == "ctBr\n"
    assert ok(sw, "br-exists", "ctBr") == ""
    r = v(sw, "br-exists", "nope")
    assert (r.code, r.out, r.err) == (2, "", "")


def test_bridge_errors_and_idempotent_options(sw):
    assert err(sw, "add-br", "ctBr") == ("ovs-vsctl: cannot create a bridge named ctBr because a bridge named "
                                         "ctBr already exists\n")
    ok(sw, "--may-exist", "add-br", "ctBr")
    assert err(sw, "del-br", "nope") == "ovs-vsctl: no bridge named nope\n"
    ok(sw, "--if-exists", "del-br", "nope")
    assert err(sw, "add-port", "nope", "x") == "ovs-vsctl: no bridge named nope\n"
    assert err(sw, "add-port", "ctBr", "p0") == ("ovs-vsctl: cannot create a port named p0 because a port "
                                                 "named p0 already exists on bridge ctBr\n")
    ok(sw, "--may-exist", "add-port", "ctBr", "p0")
    ok(sw, "add-br", "br2")
    assert err(sw, "--may-exist", "add-port", "br2", "p0") == (
        'ovs-vsctl: "--may-exist add-port br2 p0" but p0 is actually attached to bridge ctBr\n')
    assert err(sw, "del-port", "ctBr", "ctBr") == (
        "ovs-vsctl: cannot delete port ctBr because it is the local port for bridge ctBr "
        "(deleting this port requires deleting the entire bridge)\n")
    assert err(sw, "del-port", "br2", "p0") == "ovs-vsctl: bridge br2 does not have a port p0\n"
    assert err(sw, "del-port", "p9") == "ovs-vsctl: no port named p9\n"
    ok(sw, "--if-exists", "del-port", "p9")
    ok(sw, "del-port", "ctBr", "p0")
    assert ok(sw, "list-ports", "ctBr") == "pf0hpf\n"


def test_syntax_errors(sw):
    assert err(sw, "frob") == "ovs-vsctl: unknown command 'frob'; use --help for help\n"
    assert err(sw, "add-br") == "ovs-vsctl: 'add-br' command requires at least 1 arguments\n"
    assert err(sw, "del-br", "a", "b") == "ovs-vsctl: 'del-br' command takes at most 1 arguments\n"
    assert err(sw) == "ovs-vsctl: missing command name (use --help for help)\n"
    assert err(sw, "--if-exists", "add-br", "x") == "ovs-vsctl: 'add-br' command has no '--if-exists' option\n"
    assert err(sw, "set-fail-mode", "ctBr", "open") == 'ovs-vsctl: fail-mode must be "standalone" or "secure"\n'
    assert ok(sw, "--version") == "ovs-vsctl (Open vSwitch) 3.1.0\nDB Schema 8.3.1\n"


def test_global_options_accepted(sw):
    ok(sw, "--no-wait", "-t", "10", "--timeout=5", "add-br", "b2", "--", "--may-exist", "add-port", "b2", "x")
    assert ok(sw, "list-ports", "b2") == "x\n"


def test_one_transaction_all_or_nothing(sw):
    before = ok(sw, "show")
    r = v(sw, "add-br", "b", "--", "add-port", "b", "q0", "--", "set-fail-mode", "ctBr", "secure",
          "--", "set", "Open_vSwitch", ".", "other_config:hw-offload=true", "--", "del-port", "p0",
          "--", "add-port", "nope", "q1")
    assert (r.code, r.err) == (1, "ovs-vsctl: no bridge named nope\n")
    assert ok(sw, "show") == before
    assert flows(sw) == ["priority=0 actions=NORMAL"]
    assert sw.params.get("other_config:hw-offload") is False
    assert sw.bridges["ctBr"].ports["p0"].ofport == 1


def test_fail_mode_flushes_flows_like_ovs(sw):
    assert flows(sw) == ["priority=0 actions=NORMAL"]
    assert ok(sw, "get-fail-mode", "ctBr") == ""
    ofctl.run(sw, ["add-flow", "ctBr", "table=0,arp,action=normal"])
    ok(sw, "set-fail-mode", "ctBr", "secure")
    assert ok(sw, "get-fail-mode", "ctBr") == "secure\n"
    assert flows(sw) == []
    ofctl.run(sw, ["add-flow", "ctBr", "table=0,arp,action=normal"])
    ok(sw, "set-fail-mode", "ctBr", "secure")  # no change, no flush
    assert flows(sw) == ["arp actions=NORMAL"]
    ok(sw, "del-fail-mode", "ctBr")
    assert flows(sw) == ["priority=0 actions=NORMAL"]
    assert ok(sw, "get-fail-mode", "ctBr") == ""
    ok(sw, "add-br", "sec", "--", "set", "Bridge", "sec", "fail_mode=secure")
    assert flows(sw, "sec") == [] and ok(sw, "get", "Bridge", "sec", "fail_mode") == "secure\n"


def test_other_config(sw):
    ok(sw, "set", "Open_vSwitch", ".", "other_config:hw-offload=true", "other_config:tc-policy=skip_sw",
       "other_config:n-handler-threads=4")
    assert sw.params.get("other_config:hw-offload") is True
    assert sw.params.get("other_config:tc-policy") == "skip_sw"
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config:hw-offload") == '"true"\n'
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config:tc-policy") == "skip_sw\n"
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config:n-handler-threads") == '"4"\n'
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config") == (
        '{hw-offload="true", n-handler-threads="4", tc-policy=skip_sw}\n')
    assert err(sw, "get", "Open_vSwitch", ".", "other_config:max-idle") == (
        'ovs-vsctl: no key "max-idle" in Open_vSwitch record "." column other_config\n')
    # OVS prints an empty line for a missing key with --if-exists
    assert ok(sw, "--if-exists", "get", "Open_vSwitch", ".", "other_config:max-idle") == "\n"
    assert err(sw, "set", "Open_vSwitch", ".", "other_config:max-idle=100") == (
        "ovs-vsctl: other_config:max-idle=100: 100 is out of range [500..]\n")
    assert err(sw, "set", "Open_vSwitch", ".", "other_config:hw-offload=maybe") == (
        "ovs-vsctl: other_config:hw-offload=maybe: 'maybe' is not a valid boolean\n")
    assert err(sw, "set", "Open_vSwitch", ".", "other_config:tc-policy=fast") == (
        "ovs-vsctl: other_config:tc-policy=fast: 'fast' is not one of none, skip_sw, skip_hw\n")
    ok(sw, "remove", "Open_vSwitch", ".", "other_config", "hw-offload", "n-handler-threads")
    assert sw.params.get("other_config:hw-offload") is False
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config") == "{tc-policy=skip_sw}\n"
    ok(sw, "clear", "Open_vSwitch", ".", "other_config")
    assert ok(sw, "get", "Open_vSwitch", ".", "other_config") == "{}\n"


def test_bridge_and_interface_columns(sw):
    ok(sw, "set", "Bridge", "ctBr", "other_config:datapath-id=0000000000000001")
    assert ok(sw, "get", "Bridge", "ctBr", "other_config") == '{datapath-id="0000000000000001"}\n'
    assert err(sw, "set", "Bridge", "nope", "fail_mode=secure") == 'ovs-vsctl: no row "nope" in table Bridge\n'
    assert err(sw, "set", "Bridge", "ctBr", "colour=red") == (
        'ovs-vsctl: Bridge does not contain a column whose name matches "colour"\n')
    assert err(sw, "set", "Interface", "p0", "ofport_request") == (
        'ovs-vsctl: "ofport_request": argument does not end in "=" followed by a value.\n')
    ok(sw, "set", "Interface", "p0", "options:peer=pf0hpf")
    assert ok(sw, "get", "Interface", "p0", "options:peer") == "pf0hpf\n"
    ok(sw, "remove", "Interface", "p0", "options", "peer")
    assert ok(sw, "get", "Interface", "p0", "options") == "{}\n"


@pytest.mark.parametrize("text,shown", [
    ("ctBr", "ctBr"), ("p0", "p0"), ("skip_sw", "skip_sw"), ("true", '"true"'), ("3.1.0", '"3.1.0"'),
    ("", '""'), ("a b", '"a b"'), ('q"x', '"q\\"x"'),
])
def test_ovsdb_string_quoting(text, shown):
    assert vsctl.quote(text) == shown


def test_port_columns_and_interface_columns(sw):
    """add-port settings are Port columns; ofport_request belongs to the Interface (OVS 3.1)."""
    assert err(sw, "add-port", "ctBr", "p4", "ofport_request=3") == (
        'ovs-vsctl: Port does not contain a column whose name matches "ofport_request"\n')
    assert sw.find_port("p4") is None  # the transaction was undone
    ok(sw, "add-port", "ctBr", "p3", "tag=9")
    assert ok(sw, "get", "port", "p3", "tag") == "9\n"
    assert ok(sw, "get", "port", "p0", "tag") == "[]\n"
    assert err(sw, "set", "port", "p3", "tag=4096") == (
        "ovs-vsctl: constraint violation: 4096 is not in the valid range 0 to 4095 (inclusive)\n")
    assert "        Port p3\n            tag: 9\n            Interface p3\n" in ok(sw, "show")
    assert ok(sw, "get", "interface", "p0", "ofport_request") == "[]\n"
    ok(sw, "set", "interface", "p0", "ofport_request=7")
    assert ok(sw, "get", "interface", "p0", "ofport_request", "ofport") == "7\n7\n"


def test_datapath_type_and_dpid(sw):
    ok(sw, "add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev",
       "other_config:datapath-id=0000000000000001", "other_config:hwaddr=02:00:00:00:00:fe")
    assert ok(sw, "get", "bridge", "br1", "datapath_type") == "netdev\n"
    assert ok(sw, "get", "bridge", "ctBr", "datapath_type") == '""\n'
    assert "    Bridge br1\n        datapath_type: netdev\n" in ok(sw, "show")
    assert sw.bridges["br1"].datapath_id == 1
    assert ofctl.run(sw, ["show", "br1"]).out.startswith("OFPT_FEATURES_REPLY (xid=0x2): dpid:0000000000000001\n")
    ok(sw, "remove", "bridge", "br1", "other_config", "datapath-id")
    assert sw.bridges["br1"].datapath_id == 0x0200000000FE  # the hwaddr
    # without either, a stable value (not Python's per-process hash)
    assert sw.bridges["ctBr"].datapath_id == Switch().add_bridge("ctBr").datapath_id


def test_add_port_named_like_a_bridge(sw):
    ok(sw, "add-br", "br1")
    assert err(sw, "add-port", "br1", "ctBr") == (
        "ovs-vsctl: cannot create a port named ctBr because a bridge named ctBr already exists\n")
