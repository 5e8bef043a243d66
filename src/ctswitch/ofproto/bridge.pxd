# Augmenting declarations for bridge.py: Port and OFBridge become extension types with
# ``public object`` fields (Port's are its dataclass fields, its counters C integers; OFBridge's every attribute its own
# code sets, plus an instance __dict__ so attributes set from outside still work).  The callers
# that cimport them (the datapath's receive and emit, the batch table's crediting, the
# translation's NORMAL) read the port counters, by_no and generation as struct members, and
# learn()/mac_lookup() are cpdef: C calls from a typed caller.
cimport cython
from ctswitch.ofproto.rule cimport Rule, credit_rules


cdef class Port:
    cdef public object name, ofport, type, options
    # The counters as C integers (the per-packet += is a C add, no int object per count); they
    # only ever count up from 0, and a saved state is checked to hold such values (switch._count).
    cdef public unsigned long long rx_packets, rx_bytes, tx_packets, tx_bytes, rx_dropped, tx_dropped


cdef class OFBridge:
    cdef dict __dict__
    cdef public object name, fail_mode, ports, by_no, tables, mac, mac_sync, generation, n_rules
    cdef public object _seq, other

    @cython.locals(macs=dict, old=tuple)
    cpdef learn(self, vlan, mac, ofport, now)

    cpdef mac_lookup(self, vlan, mac, now, aging_ms)


@cython.locals(by_no=dict, p=Port)
cpdef credit_hits(OFBridge bridge, rules, packets, nbytes, used, learned, src, in_port, out_port)
