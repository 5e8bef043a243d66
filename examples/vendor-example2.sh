# NVIDIA BlueField "Connection Tracking Offload", example 2: SNAT.
# The host 2.2.2.1 (behind pf0hpf) reaches 1.1.1.2 (behind p0); the Arm
# source-NATs it to 1.1.1.16.  Run with:  ctswitch run examples/vendor-example2.sh

$ ovs-vsctl set Open_vSwitch . other_config:hw-offload=true
$ ovs-vsctl add-br ctBr
$ ovs-vsctl add-port ctBr p0
$ ovs-vsctl add-port ctBr pf0hpf
$ ovs-ofctl add-flow ctBr "table=0,arp,action=normal"

# Untracked IP packets do NAT (bare nat: apply the stored mapping).
ovs-ofctl add-flow ctBr "table=0,ip,ct_state=-trk,action=ct(table=1,nat)"
# New connections from the host are committed with SNAT to 1.1.1.16 and sent to p0.
ovs-ofctl add-flow ctBr "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), p0"
# Established connections act normal.
ovs-ofctl add-flow ctBr "table=1,ip,ct_state=+trk+est,action=normal"

# Tuning from the vendor page.
$ /sbin/sysctl -w net.netfilter.nf_conntrack_max=1000000
# devlink dev param set pci/0000:03:00.0 name ct_max_offloaded_conns value 1000000 cmode runtime
$ echo 4 > /sys/module/mlx5_core/parameters/num_of_groups
$ sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1

$ ovs-ofctl dump-flows ctBr
