"""Exact text of the offload views: devlink resources, offload stats, explain."""

from types import SimpleNamespace

from ctswitch.control import offload_tool
from ctswitch.offload.manager import OffloadManager
from ctswitch.offload.render import _stat_line

A = 0x02020201  # 2.2.2.1
B = 0x01010102  # 1.1.1.2
NAT = 0x01010110  # 1.1.1.16


def build(params, tracker):
    """A SNAT'ed TCP in HW, a UDP waiting for its reply, an ICMP echo, a TCP over the limit."""
    params.set("devlink:ct_max_offloaded_conns", 1)
    m = OffloadManager(params, tracker)
    t = tracker.new(1, zone=1, nat=True, orig=(A, B, 34541, 5001), reply=(B, NAT, 5001, 34541))
    tracker.establish(t)
    m.consider(t, 2000)
    u = tracker.new(2, proto=17, orig=(A, B, 5353, 53))
    tracker.udp(u)
    m.consider(u, 2500)
    i = tracker.new(3, proto=1, orig=(A, B, 7, 8 << 8), reply=(B, A, 7, 0))
    tracker.udp(i)
    tracker.udp(i, reply=True)
    m.consider(i, 3000)
    s = tracker.new(4, orig=(A, B, 40000, 80))
    tracker.establish(s)
    m.consider(s, 3500)
    return SimpleNamespace(tracker=tracker, offload=m, params=params, now=4000)


def test_explain_text(params, tracker):
    sw = build(params, tracker)
    r = offload_tool.run_explain(sw, [])
    assert (r.code, r.err) == (0, "")
    assert r.out == (
        "tcp      6 src=2.2.2.1 dst=1.1.1.2 sport=34541 dport=5001 src=1.1.1.2 dst=1.1.1.16 sport=5001 "
        "dport=34541 [HW_OFFLOAD] mark=0 zone=1\n"
        "    offloaded to hardware [HW_OFFLOAD] since t=2: 2 FDB rules in group tcp4-nat; "
        "last used at t=2; ages out at t=32 unless used (30 s idle timeout)\n"
        "udp      17 src=2.2.2.1 dst=1.1.1.2 sport=5353 dport=53 [UNREPLIED] src=1.1.1.2 dst=2.2.2.1 "
        "sport=53 dport=5353 mark=0 zone=0\n"
        "    not offloaded: UDP: waiting for a reply\n"
        "icmp     1 src=2.2.2.1 dst=1.1.1.2 type=8 code=0 id=7 src=1.1.1.2 dst=2.2.2.1 type=0 code=0 id=7 "
        "mark=0 zone=0\n"
        "    not offloaded: ICMP is never offloaded\n"
        "tcp      6 src=2.2.2.1 dst=1.1.1.2 sport=40000 dport=80 src=1.1.1.2 dst=2.2.2.1 sport=80 "
        "dport=40000 [OFFLOAD] mark=0 zone=0\n"
        "    offloaded to the software flow table [OFFLOAD] since t=3.5, not in hardware: "
        "ct_max_offloaded_conns reached (1); the hardware insert is retried on software hits; "
        "last used at t=3.5; ages out at t=34 unless used (30 s idle timeout)\n"
        "4 connections: 1 in hardware, 1 in software only, 2 not offloaded\n")


def test_explain_filters(params, tracker):
    sw = build(params, tracker)
    r = offload_tool.run_explain(sw, ["-p", "tcp", "--dport", "80"])
    assert r.out.splitlines()[0].startswith("tcp      6 src=2.2.2.1 dst=1.1.1.2 sport=40000 dport=80 ")
    assert r.out.splitlines()[-1] == "1 connection: 0 in hardware, 1 in software only, 0 not offloaded"
    r = offload_tool.run_explain(sw, ["-z", "1", "-s", "2.2.2.1", "-d", "1.1.1.2", "--sport=34541"])
    assert r.out.splitlines()[-1] == "1 connection: 1 in hardware, 0 in software only, 0 not offloaded"
    r = offload_tool.run_explain(sw, ["-p", "udp", "-s", "9.9.9.9"])
    assert r.out == "0 connections: 0 in hardware, 0 in software only, 0 not offloaded\n"
    r = offload_tool.run_explain(sw, ["-s", "1.2.3"])
    assert (r.code, r.out, r.err) == (2, "", "ctswitch explain: bad parameter `1.2.3' for option `-s'\n")
    r = offload_tool.run_explain(sw, ["--bogus"])
    assert r.err == "ctswitch explain: unknown option `--bogus'\n"
    r = offload_tool.run_explain(sw, ["-p"])
    assert r.err == "ctswitch explain: option `-p' requires an argument\n"


def test_devlink_resource_show(params, tracker):
    sw = build(params, tracker)
    params.set("modparam:mlx5_core.num_of_groups", 2)
    r = offload_tool.run_devlink_resource_show(sw, ["resource", "show", "pci/0000:03:00.0"])
    assert (r.code, r.err) == (0, "")
    assert r.out == (
        "pci/0000:03:00.0:\n"
        "  name fdb size 4000000 occ 2 unit entry num_of_groups 4 group_size 800000\n"
        "    resources:\n"
        "      name tcp4-nat size 800000 occ 2 free 799998 unit entry\n"
        "      name unallocated size 3200000 unit entry\n"
        "    pending num_of_groups 2 (applies when the FDB is empty; 2 entries in use)\n"
        "  name ct_offloaded_conns size 1 occ 1 unit entry\n"
        "    resources:\n"
        "      name hw_rules size 2 occ 2 unit entry\n"
        "      name sw_only occ 1 unit entry\n"
        "  name refused_inserts occ 1 unit insert\n"
        "    resources:\n"
        "      name ct_max_offloaded_conns occ 1 unit insert\n"
        "      name group_full occ 0 unit insert\n"
        "      name table_full occ 0 unit insert\n")


def test_devlink_small_groups_and_errors(mk_params, tracker):
    p = mk_params(**{"modparam:ctswitch.fdb_capacity": 10, "modparam:mlx5_core.num_of_groups": 1})
    m = OffloadManager(p, tracker)
    for cid, proto in ((1, 6), (2, 17)):
        c = tracker.new(cid, proto=proto)
        tracker.establish(c)
        m.consider(c, 0)
    sw = SimpleNamespace(tracker=tracker, offload=m, params=p, now=0)
    r = offload_tool.run_devlink_resource_show(sw, [])
    assert r.out.splitlines()[1:5] == [
        "  name fdb size 10 occ 4 unit entry num_of_groups 1 group_size 5",
        "    resources:",
        "      name tcp4 size 5 occ 2 free 3 unit entry",
        "      name udp4 size 2 occ 2 free 0 unit entry groups 2 group_size 1",
    ]
    assert r.out.splitlines()[5] == "      name unallocated size 3 unit entry"
    r = offload_tool.run_devlink_resource_show(sw, ["show", "pci/0000:04:00.0"])
    assert (r.code, r.out, r.err) == (1, "", "devlink answers: No such device\n")
    r = offload_tool.run_devlink_resource_show(sw, ["eth0"])
    assert (r.code, r.err) == (1, "Bus name and device name are expected.\n")


def test_offload_stats_show(params, tracker):
    sw = build(params, tracker)
    r = offload_tool.offload_stats_show(sw, [])
    assert r.out == (
        "HW Offload stats:\n"
        "     Total                 Enqueued offloads:       0\n"
        "     Total                 Inserted offloads:       2\n"
        "     Total            CT uni-dir Connections:       0\n"
        "     Total             CT bi-dir Connections:       1\n"
        "     Total            CT SW-only Connections:       1\n"
        "     Total                 CT HW rules limit:       2\n"
        "     Total                 CT offloads to HW:       1\n"
        "     Total        CT refused by ct_max_conns:       1\n"
        "     Total            CT refused, group full:       0\n"
        "     Total            CT refused, table full:       0\n"
        "     Total                       CT aged out:       0\n"
        "     Total                      CT torn down:       0\n")
    assert all(line.index(":") == 44 and len(line) == 53 for line in r.out.splitlines()[1:])


def test_stat_line_layout_matches_ovs_doca():
    assert _stat_line("Inserted offloads", 8283) == "     Total                 Inserted offloads:    8283"
    assert _stat_line("Cumulative Latency max (us)", 692044) == (
        "     Total       Cumulative Latency max (us):  692044")
