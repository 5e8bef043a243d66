# NVIDIA BlueField "Connection Tracking Offload", example 1:
# offload all IP connections of host PF0 (commands as on the vendor page).
# Run with:  ctswitch run examples/vendor-example1.sh

$ ovs-vsctl set Open_vSwitch . other_config:hw-offload=true
$ ovs-vsctl add-br ctBr
$ ovs-vsctl add-port ctBr p0
$ ovs-vsctl add-port ctBr pf0hpf

# ARP behaves normally; untracked IP goes through conntrack, then to table 1.
$ ovs-ofctl add-flow ctBr "table=0,arp,action=normal"
# RoCEv2 (UDP 4791) skips connection tracking: added BEFORE the -trk rule.
$ ovs-ofctl add-flow ctBr table=0,udp,tp_dst=4791,action=normal
$ ovs-ofctl add-flow ctBr "table=0,ip,ct_state=-trk,action=ct(table=1)"
# New connections are committed, established ones behave normally.
$ ovs-ofctl add-flow ctBr "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal"
$ ovs-ofctl add-flow ctBr "table=1,priority=1,ip,ct_state=+trk+est,action=normal"

# Tuning from the vendor page.
$ /sbin/sysctl -w net.netfilter.nf_conntrack_max=1000000
# devlink dev param set pci/0000:03:00.0 name ct_max_offloaded_conns value 1000000 cmode runtime
$ sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1

$ ovs-ofctl dump-flows ctBr
