"""sysctl, devlink, modparam and the emulated /sys, /proc files: formats and validation."""

from __future__ import annotations

from types import SimpleNamespace

from ctswitch import params as P
from ctswitch.control import devlink, modparam, sysctl
from ctswitch.datapath.switch import Switch
from ctswitch.offload.fdb import Fdb

MAX = "net.netfilter.nf_conntrack_max"
DEV = "pci/0000:03:00.0"


def r3(res):
    return res.code, res.out, res.err


# ---------------------------------------------------------------------- sysctl
def test_sysctl_read_write():
    sw = Switch()
    assert r3(sysctl.run(sw, [MAX])) == (0, f"{MAX} = 262144\n", "")
    assert r3(sysctl.run(sw, ["-n", MAX])) == (0, "262144\n", "")
    assert r3(sysctl.run(sw, ["net/netfilter/nf_conntrack_max"])) == (0, f"{MAX} = 262144\n", "")
    res = sysctl.run(sw, ["-w", f"{MAX}=1000000"])
    assert r3(res) == (0, f"{MAX} = 1000000\n", "") and res.changed
    assert sw.params.get(f"sysctl:{MAX}") == 1000000
    assert r3(sysctl.run(sw, ["-q", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1"])) == (0, "", "")
    assert sw.params.get("sysctl:net.netfilter.nf_conntrack_tcp_be_liberal") == 1
    assert r3(sysctl.run(sw, ["net.netfilter.nf_conntrack_acct=1"])) == (0, "net.netfilter.nf_conntrack_acct = 1\n", "")


def test_sysctl_errors_as_procps():
    sw = Switch()
    assert r3(sysctl.run(sw, ["net.foo"])) == (255, "", "sysctl: cannot stat /proc/sys/net/foo: No such file or directory\n")
    assert r3(sysctl.run(sw, ["-e", "net.foo"])) == (0, "", "")
    res = sysctl.run(sw, ["-w", f"{MAX}=lots"])
    assert r3(res) == (255, "", f'sysctl: setting key "{MAX}": Invalid argument\n') and not res.changed
    assert r3(sysctl.run(sw, ["-w", "net.netfilter.nf_conntrack_acct=2"]))[0] == 255
    assert sw.params.get("sysctl:net.netfilter.nf_conntrack_acct") == 0
    assert r3(sysctl.run(sw, ["-w", "net.netfilter.nf_conntrack_count=5"])) == (
        255, "", 'sysctl: permission denied on key "net.netfilter.nf_conntrack_count"\n')
    # the other arguments are still processed
    assert r3(sysctl.run(sw, ["net.foo", MAX])) == (
        255, f"{MAX} = 262144\n", "sysctl: cannot stat /proc/sys/net/foo: No such file or directory\n")


def test_sysctl_all_and_count_from_tracker():
    sw = Switch()
    sw.tracker = SimpleNamespace(count=3)
    out = sysctl.run(sw, ["-a"]).out.splitlines()
    names = sorted(p.name for p in P.PARAMS.values() if p.domain == "sysctl")
    assert [ln.split(" = ")[0] for ln in out] == names
    assert "net.netfilter.nf_conntrack_count = 3" in out
    assert sysctl.run(sw, ["-n", "net.netfilter.nf_conntrack_count"]).out == "3\n"


def test_sysctl_load_file(tmp_path):
    sw = Switch()
    (tmp_path / "ct.conf").write_text("# comment\n; also\nnet.netfilter.nf_conntrack_max = 5000\n\n")
    res = sysctl.run(sw, ["-p", "ct.conf"], SimpleNamespace(cwd=str(tmp_path)))
    assert r3(res) == (0, f"{MAX} = 5000\n", "")


# ---------------------------------------------------------------------- devlink
SHOW = (f"{DEV}:\n  name ct_max_offloaded_conns type driver-specific\n    values:\n"
        "      cmode runtime value {}\n")


def test_devlink_param_show_and_set():
    sw = Switch()
    assert r3(devlink.run(sw, ["dev", "param", "show"])) == (0, SHOW.format(1000000), "")
    res = devlink.run(sw, ["dev", "param", "set", DEV, "name", "ct_max_offloaded_conns", "value", "4096",
                           "cmode", "runtime"])
    assert r3(res) == (0, "", "") and res.changed
    assert sw.params.get("devlink:ct_max_offloaded_conns") == 4096
    assert r3(devlink.run(sw, ["dev", "param", "show", DEV, "name", "ct_max_offloaded_conns"])) == (
        0, SHOW.format(4096), "")
    # keywords in any order, commands abbreviated as iproute2 allows
    devlink.run(sw, ["dev", "param", "set", DEV, "cmode", "runtime", "value", "7", "name", "ct_max_offloaded_conns"])
    assert devlink.run(sw, ["dev", "param", "sh"]).out == SHOW.format(7)
    assert r3(devlink.run(sw, ["dev", "show"])) == (0, f"{DEV}\n", "")
    assert devlink.run(sw, ["dev", "eswitch", "show", DEV]).out == (
        f"{DEV}: mode switchdev inline-mode none encap-mode basic\n")


def test_devlink_errors():
    sw = Switch()
    base = ["dev", "param", "set", DEV, "name", "ct_max_offloaded_conns", "value"]
    assert r3(devlink.run(sw, base + ["x1", "cmode", "runtime"])) == (
        1, "", 'Value "x1" is not a number or not within range\n')
    assert r3(devlink.run(sw, base + ["4294967296", "cmode", "runtime"]))[2] == (
        'Value "4294967296" is not a number or not within range\n')
    assert r3(devlink.run(sw, base + ["5", "cmode", "driverinit"])) == (
        1, "", "devlink answers: Operation not supported\n")
    assert r3(devlink.run(sw, base + ["5", "cmode", "boot"])) == (1, "", 'Unknown configuration mode "boot"\n')
    assert r3(devlink.run(sw, base + ["5"])) == (1, "", "Configuration mode expected.\n")
    other = ["dev", "param", "set", "pci/0000:04:00.0", "name", "ct_max_offloaded_conns", "value", "5",
             "cmode", "runtime"]
    assert r3(devlink.run(sw, other)) == (1, "", "devlink answers: No such device\n")
    assert r3(devlink.run(sw, ["dev", "param", "show", DEV, "name", "nope"])) == (
        1, "", "devlink answers: Invalid argument\n")
    assert r3(devlink.run(sw, ["dev", "param", "show", "0000:03:00.0"]))[2] == (
        'Devlink identification ("bus_name/dev_name") "0000:03:00.0" is invalid\n')
    assert r3(devlink.run(sw, ["port", "show"])) == (1, "", 'Object "port" not found\n')
    assert sw.params.get("devlink:ct_max_offloaded_conns") == 1000000


def test_devlink_resource_show_is_delegated():
    sw = Switch()
    res = devlink.run(sw, ["resource", "show", DEV])
    assert res.code == 0 and res.out.startswith(f"{DEV}:\n  name fdb size 4000000 ")


# ---------------------------------------------------------------------- modparam and files
def test_modparam_show_set_list():
    sw = Switch()
    assert r3(modparam.run(sw, ["mlx5_core", "num_of_groups"])) == (0, "4\n", "")
    res = modparam.run(sw, ["mlx5_core", "num_of_groups", "8"])
    assert r3(res) == (0, "", "") and res.changed
    assert sw.offload.fdb.num_of_groups == 8 and sw.offload.fdb.group_size == 4000000 // 9
    assert modparam.run(sw, ["mlx5_core.num_of_groups"]).out == "8\n"
    assert r3(modparam.run(sw, ["mlx5_core", "num_of_groups", "0"])) == (
        1, "", "ctswitch modparam: mlx5_core.num_of_groups: 0 is out of range [1..1024]\n")
    assert modparam.run(sw, []).out == ("ctswitch.fdb_capacity = 4000000\nctswitch.udp_unidirectional_offload = 0\n"
                                        "mlx5_core.num_of_groups = 8\n")
    assert modparam.run(sw, ["mlx5_core", "nope"]).code == 1


def test_num_of_groups_is_pending_while_the_fdb_holds_flows():
    sw = Switch()
    fdb: Fdb = sw.offload.fdb
    fdb.insert((4, 6, False))
    res = modparam.echo(sw, ["2", ">", "/sys/module/mlx5_core/parameters/num_of_groups"])
    assert res.code == 0 and res.out == ""
    assert res.err == ("note: mlx5_core.num_of_groups 2 is pending: the FDB holds 1 entries; it takes effect "
                       "when all offloaded flows have aged out\n")
    assert fdb.num_of_groups == 4 and fdb.pending_num_of_groups == 2
    assert modparam.cat(sw, ["/sys/module/mlx5_core/parameters/num_of_groups"]).out == "2\n"
    fdb.remove((4, 6, False))
    assert fdb.num_of_groups == 2 and fdb.group_size == 4000000 // 3


def test_cat_and_echo_files():
    sw = Switch()
    assert modparam.cat(sw, ["/proc/sys/net/netfilter/nf_conntrack_max"]).out == "262144\n"
    assert r3(modparam.echo(sw, ["5000", ">/proc/sys/net/netfilter/nf_conntrack_max"])) == (0, "", "")
    assert sw.params.get(f"sysctl:{MAX}") == 5000
    assert r3(modparam.cat(sw, ["/proc/net/nf_conntrack"])) == (0, "", "")
    assert r3(modparam.echo(sw, ["x", ">", "/sys/module/mlx5_core/parameters/num_of_groups"])) == (
        1, "", "echo: write error: Invalid argument\n")
    res = modparam.cat(sw, ["/etc/passwd"])
    assert res.code == 1 and res.err.startswith("ctswitch cat: /etc/passwd: not an emulated file")
    assert r3(modparam.echo(sw, ["hello", "world"])) == (0, "hello world\n", "")
