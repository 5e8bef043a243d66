"""The pure helpers of the OVS DPDK replay harness (bench/ovs_dpdk.py): the flow port-number
rewrite (its flows are added before its ports exist) and the dpctl/show -s counter parser
(its timing and its checks read them)."""

from bench.ovs_dpdk import numbered, port_counters

from ctswitch.control.vendor import EXAMPLE2


def test_port_names_become_numbers_as_whole_tokens_only():
    assert numbered(EXAMPLE2)[2] == \
        "table=1,in_port=1,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), 2"
    assert [f for i, f in enumerate(numbered(EXAMPLE2)) if i != 2] == [f for i, f in enumerate(EXAMPLE2) if i != 2]
    # a longer name that starts with a port's name, or a name inside a note, is not a port
    assert numbered(["in_port=p0,actions=output:pf0hpf", "actions=note:p0x,p0", "in_port=p0x,actions=p0)"]) == \
        ["in_port=2,actions=output:1", "actions=note:p0x,2", "in_port=p0x,actions=2)"]


def test_port_counters_of_dpctl_show():
    show = """netdev@ovs-netdev:
  lookups: hit:5 missed:2 lost:0
  flows: 3
  port 0: ovs-netdev (tap)
    RX packets:0 errors:0 dropped:0 overruns:0 frame:0
    TX packets:0 errors:0 dropped:0 aborted:0 carrier:0
  port 1: pf0hpf (dpdk: configured_rx_queues=1)
    RX packets:500001 errors:0 dropped:0 overruns:0 frame:0
    TX packets:490001 errors:0 dropped:0 aborted:0 carrier:0
  port 2: p0 (dpdk: configured_rx_queues=1)
    RX packets:491025 errors:0 dropped:0 overruns:0 frame:0
    TX packets:500001 errors:0 dropped:0 aborted:0 carrier:0
"""
    assert port_counters(show) == {"ovs-netdev": [0, 0], "pf0hpf": [500001, 490001], "p0": [491025, 500001]}
    assert port_counters("") == {}
