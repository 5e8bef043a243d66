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
    cdef public object _c_pkt, _c_zone, _c_conn, _c_dir, _c_state, _c_helped, destroy_hook
    cdef public object flowtable, _addrs, _expects, _expect_of, defrag, _cold, _cold_owner
    cdef public object _ncold, _sorted, _probe

    @cython.locals(conn=Conn, t=Timeouts, v=CtVerdict)
    cpdef process(self, pkt, key, zone, ct, now)

    @cython.locals(v=CtVerdict)
    cpdef _verdict(self, Conn conn, d, base, zone, ct, key)

    cpdef _nat_packet(self, Conn conn, d, base, ct, key, CtVerdict v)

    @cython.locals(conn=Conn, tc=TcpConn, sub=dict, tables=dict)
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
