# Augmenting declarations for tracker.py.
# CtVerdict: an extension type with ``public object`` fields (its slots).
# Tracker: an extension type that keeps weak references and an instance __dict__ (attributes set
# from outside, and instance attributes that shadow methods, e.g. bench_slowpath --split's
# timers, still work);
# every attribute its own code sets is a ``public object`` field (so the __dict__ stays empty and
# the cpdef methods' override check stays cached).  process/_track/_verdict are cpdef with the
# connection, packet and timeouts typed: their field reads are struct member reads.
cimport cython
from ctswitch.conntrack.conn cimport Conn, TcpConn
from ctswitch.conntrack.timeouts cimport Timeouts
from ctswitch.packet.headers cimport Packet
# tcp's per-segment functions as direct C calls (no Python call and argument parsing per packet).
from ctswitch.conntrack.tcp cimport init as tcp_init, packet as tcp_packet

# The module's small constants as C integers (imported from flow.key, conn, tcp and
# packet.headers; all in 0..256, which Python keeps as shared int objects, so one used with a
# Python int costs no allocation): a key read with one is an indexed list read, a combination of
# them C arithmetic, instead of a module-global lookup and a Python int operation.  They are no
# longer attributes of the compiled module (nothing imports them from here).  IPS_OFFLOAD and
# IPS_HW_OFFLOAD (1 << 14, 1 << 15) stay Python ints.
cdef long CS_DNAT, CS_EST, CS_INV, CS_NEW, CS_REL, CS_RPL, CS_SNAT, CS_TRK
cdef Py_ssize_t IPV6_DST, IPV6_SRC, NW_DST, NW_PROTO, NW_SRC, TP_DST, TP_SRC
cdef long FRAG_LATER, DIR_ORIG, DIR_REPLY, EV_ASSURED, EV_LABEL, EV_MARK, EV_REPLY
cdef long IPS_ASSURED, IPS_CONFIRMED, IPS_DST_NAT, IPS_DST_NAT_DONE, IPS_EXPECTED
cdef long IPS_NAT_MASK, IPS_SEEN_REPLY, IPS_SRC_NAT, IPS_SRC_NAT_DONE
cdef long F_BE_LIBERAL, KILL, R_IGNORE, R_INVALID, REPEAT
cdef tuple VALID_OF
cdef bint _PACK  # (tracker.py)


cdef class CtVerdict:
    cdef public object state, zone, mark, label, orig, nat_src, nat_dst, icmp_id
    cdef public object icmp_inner, conn, reply, drop


cdef class _NatProbe:
    cdef public object table, cold, zp, peer, fixed, rtype, snat, icmp, ported


cdef class Tracker:
    cdef dict __dict__
    cdef object __weakref__
    cdef public object params, _t, _tables, _conns, _unassured, _zone_count, limits, stats
    cdef public object created, log_total, log, _rl_start, _rl_count, _rl_suppressed, events
    cdef public object events_enabled, events_total, _next_id, _rng, _next_expiry
    cdef public object _c_pkt, _c_zone, _c_conn, _c_dir, _c_state, _c_hpkt, _c_hconn
    cdef public object destroy_hook, flowtable, _addrs, _expects, _expect_of, defrag, _cold
    cdef public object _cold_owner, _ncold, _sorted, _probe

    @cython.locals(conn=Conn, t=Timeouts, v=CtVerdict)
    cpdef process(self, pkt, key, zone, ct, now)

    @cython.locals(v=CtVerdict)
    cpdef _verdict(self, Conn conn, d, base, zone, ct, key)

    cpdef _nat_packet(self, Conn conn, d, base, ct, key, CtVerdict v)

    @cython.locals(conn=Conn, tc=TcpConn, sub=dict, tables=dict, d=cython.long, res=cython.long)
    cpdef _track(self, Packet pkt, key, zone, Timeouts t, now)

    @cython.locals(t=dict)
    cpdef _intern(self, addr)

    @cython.locals(tables=dict)
    cpdef _sub(self, zone, ip_ver, proto)

    @cython.locals(zc=dict, sub=dict)
    cpdef _confirm(self, Conn conn, ct, now)

    @cython.locals(taken=_NatProbe)
    cpdef _setup_nat(self, Conn conn, spec, now, table)

    @cython.locals(tc=TcpConn)
    cpdef on_offload(self, conn, now)

    @cython.locals(tc=TcpConn, t=Timeouts)
    cpdef on_unoffload(self, conn, now, expired=*, closing=*)
