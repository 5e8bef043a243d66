"""ctswitch run: prompts, comments, variables, continuations, vendor noise, errors with line numbers."""

from __future__ import annotations

from types import SimpleNamespace

from ctswitch.control import ofctl, script
from ctswitch.datapath.switch import Switch


def run(text: str, sw: Switch | None = None):
    sw = sw or Switch()
    return sw, script.run_text(sw, text, "s.sh", SimpleNamespace(cwd="/", stdin=None))


def dump(sw) -> list[str]:
    out = ofctl.run(sw, ["dump-flows", "ctBr", "--no-stats"]).out
    return [ln.strip() for ln in out.splitlines() if "reply" not in ln]


def test_vendor_page_paste():
    text = (
        "Copy Copied! $ ovs-vsctl add-br ctBr\n"
        "Copy Copied! $ ovs-vsctl add-port ctBr p0 $ ovs-vsctl add-port ctBr pf0hpf\n"
        "$\u00a0ovs-ofctl add-flow ctBr \"table=0,arp,action=normal\"\n"
        "Copy Copied! ovs-ofctl add-flow ctBr \"table=1,in_port=pf0hpf,ip,ct_state=+trk+new,"
        "action=ct(commit,nat(src=1.1.1.16)), p0\"\r\n"
    )
    sw, res = run(text)
    assert res.code == 0, res.err
    assert res.out == (
        "+ ovs-vsctl add-br ctBr\n"
        "+ ovs-vsctl add-port ctBr p0\n"
        "+ ovs-vsctl add-port ctBr pf0hpf\n"
        "+ ovs-ofctl add-flow ctBr table=0,arp,action=normal\n"
        "+ ovs-ofctl add-flow ctBr 'table=1,in_port=pf0hpf,ip,ct_state=+trk+new,"
        "action=ct(commit,nat(src=1.1.1.16)), p0'\n")
    assert sorted(sw.bridges["ctBr"].ports) == ["ctBr", "p0", "pf0hpf"]
    assert len(dump(sw)) == 3


def test_prompts_comments_sudo_variables_continuations():
    text = (
        "# Enable offload (a comment: '#' followed by prose)\n"
        "#ovs-vsctl add-br commented-out\n"
        "\n"
        "pci_dev=0000:03:00.0\n"
        "export max='1234'\n"
        "# devlink dev param set pci/${pci_dev} name ct_max_offloaded_conns value $max cmode runtime\n"
        "$ sudo /sbin/sysctl -w \\\n"
        "    net.netfilter.nf_conntrack_max=1000000   # trailing comment\n"
        "sudo -E echo 8 > /sys/module/mlx5_core/parameters/num_of_groups\n"
        "echo '$max' \"$max\"\n"
    )
    sw, res = run(text)
    assert res.code == 0, res.err
    assert res.out == (
        "+ devlink dev param set pci/0000:03:00.0 name ct_max_offloaded_conns value 1234 cmode runtime\n"
        "+ /sbin/sysctl -w net.netfilter.nf_conntrack_max=1000000\n"
        "net.netfilter.nf_conntrack_max = 1000000\n"
        "+ echo 8 > /sys/module/mlx5_core/parameters/num_of_groups\n"
        "+ echo '$max' 1234\n"
        "$max 1234\n")
    assert sw.params.get("devlink:ct_max_offloaded_conns") == 1234
    assert sw.params.get("modparam:mlx5_core.num_of_groups") == 8
    assert sw.bridges == {}


def test_unsupported_command_reports_its_line():
    sw, res = run("ovs-vsctl add-br ctBr\n\n# note\novs-vsctl \\\n  add-port ctBr p0\niperf3 -c 1.1.1.2\n")
    assert res.code == 1
    assert res.out == "+ ovs-vsctl add-br ctBr\n+ ovs-vsctl add-port ctBr p0\n"
    assert res.err == "ctswitch run: s.sh:6: unsupported command 'iperf3'\n"
    assert not res.changed


def test_failing_command_stops_with_its_status_and_line():
    sw, res = run("ovs-vsctl add-br ctBr\novs-vsctl add-br ctBr\novs-vsctl add-br never\n")
    assert res.code == 1
    assert res.err == ("ovs-vsctl: cannot create a bridge named ctBr because a bridge named ctBr already exists\n"
                       "ctswitch run: s.sh:2: 'ovs-vsctl add-br ctBr' failed with exit status 1\n")
    assert "never" not in sw.bridges
    _, res = run("ovs-vsctl br-exists nope\n")
    assert res.code == 2 and res.err == "ctswitch run: s.sh:1: 'ovs-vsctl br-exists nope' failed with exit status 2\n"


def test_shell_errors():
    assert run("devlink dev show pci/$dev\n")[1].err == (
        "ctswitch run: s.sh:1: variable 'dev' is not set (add a line dev=VALUE)\n")
    assert run("ovs-ofctl add-flow ctBr \"table=0\n")[1].err == "ctswitch run: s.sh:1: No closing quotation\n"
    assert run("ovs-vsctl list-br && ovs-vsctl show\n")[1].err == (
        "ctswitch run: s.sh:1: unsupported shell operator '&&'\n")
    assert run("ovs-vsctl list-br | wc -l\n")[1].err == (
        "ctswitch run: s.sh:1: unsupported pipe '| wc' (only '| grep PATTERN')\n")


def test_grep_pipe_and_ctswitch_prefix():
    sw, res = run("ovs-vsctl add-br ctBr\nctswitch time show | grep -c switch\n"
                  "ovs-vsctl show | grep -v -i INTERFACE | grep Port\n")
    assert res.code == 1  # a second pipe is refused
    _, res = run("ovs-vsctl add-br ctBr\novs-vsctl show | grep -i bridge\nctswitch time show\n")
    assert res.code == 0
    assert res.out == ("+ ovs-vsctl add-br ctBr\n+ ovs-vsctl show | grep -i bridge\n    Bridge ctBr\n"
                       "+ ctswitch time show\nswitch time is 0.000 s\n")


def test_run_reads_file_relative_to_cwd(tmp_path):
    (tmp_path / "setup.sh").write_text("$ ovs-vsctl add-br ctBr\n")
    sw = Switch()
    res = script.run(sw, ["setup.sh"], SimpleNamespace(cwd=str(tmp_path), stdin=None))
    assert res.code == 0 and "ctBr" in sw.bridges and res.changed
    res = script.run(sw, ["missing.sh"], SimpleNamespace(cwd=str(tmp_path), stdin=None))
    assert (res.code, res.err) == (1, "ctswitch run: missing.sh: No such file or directory\n")
    res = script.run(sw, ["-"], SimpleNamespace(cwd="/", stdin="ovs-vsctl add-br b2\n"))
    assert res.code == 0 and "b2" in sw.bridges
