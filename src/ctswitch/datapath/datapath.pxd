# Augmenting declarations for datapath.py.
# FastEntry: an extension type with ``public object`` fields (its slots).
# Datapath: an extension type with an instance __dict__ (attributes set from outside, and instance
# attributes that shadow methods, e.g. the tests' and bench_slowpath --split's wrappers of
# _cache_peer, _emit and _maybe_cache, still work); every attribute its own code sets is a
# ``public object`` field (so the __dict__ stays empty and the cpdef methods' override check
# stays cached).  The per-packet methods are cpdef (calls between them are C calls), with the
# translation, the cached entry and the offload manager typed: their fields are struct member
# reads, the manager's hw_hit/sw_hit C calls.  In _slow, consider is a typed call through the
# local om (its arguments positional, as a typed call hands them to an instance attribute shadowing
# it, e.g. bench_slowpath --split's timer); teardown stays untyped (its keyword-only ``deleted``).  _cache_peer is cpdef too: its
# prediction asks the tracker itself (xlate.predict_reply: no callback object; a lambda is a closure,
# which a cpdef method cannot hold).  _consults_uncacheable reads the wildcards, and the methods their flow keys, at C indices.  The parse, the
# flow key's extraction, the NAT rewrite (codec.parse, key.extract, rewrite.apply) and the
# translation through the megaflow cache (xlate._replay, what xlate.translate calls with a cache)
# are C calls: no module attribute lookup, argument tuple or keyword dict per packet.  receive's
# packet is typed (parse's result), and _slow reads the packet's flags, each verdict's connection
# and reply and the connection's status and protocol as struct members behind exact type checks
# (isinstance for a connection: TcpConn is a Conn); the tests' stand-ins take the generic code.
# headers, conn and tracker are no new dependency of this module's loading: xlate.pxd and
# codec.pxd cimport them already (tests/unit/test_native.py lists who depends on them).
cimport cython
from ctswitch.conntrack.conn cimport Conn
from ctswitch.conntrack.tracker cimport CtVerdict
from ctswitch.offload.manager cimport OffloadManager
from ctswitch.ofproto.bridge cimport OFBridge, Port
from ctswitch.ofproto.rule cimport credit_rules
from ctswitch.ofproto.xlate cimport Translation, _replay, predict_reply
from ctswitch.flow.key cimport extract
from ctswitch.packet.codec cimport parse
from ctswitch.packet.headers cimport Packet
from ctswitch.packet.rewrite cimport apply


cdef Py_ssize_t _IN_PORT, _DL_SRC, _DL_DST, _DL_TYPE, _VLAN_TCI, _NW_SRC, _NW_DST, _IPV6_SRC, _IPV6_DST
cdef Py_ssize_t _NW_PROTO, _TP_SRC, _TP_DST, _NW_FRAG
cdef long _SYN_SENT, _SYN_RECV, _SYN_SENT2
cdef Py_ssize_t _N_FIELDS
cdef long _CS_EST

@cython.locals(i=Py_ssize_t)
cpdef bint _consults_uncacheable(wc) except -1

cpdef bint _batchable(conn) except -1


cdef class FastEntry:
    cdef public object generation, cid, tracker, reply, outputs, rules, extra, packets, bytes
    cdef public object used, created, learns


cdef class Datapath:
    cdef dict __dict__
    cdef public object switch, cache, by_conn, batch, megaflows, _peer_l2, _params_version, _aging
    cdef public object _peer_wc, _peer_wc_ok, _tr_wc, _tr_wc_ok
    cdef public object stats, drops, next_tick

    @cython.locals(bridge=OFBridge, by_no=dict, port=Port, pkt=Packet)
    cpdef receive(self, bridge, in_port, frame, now, _kernel_miss=*)

    cpdef _mac_aging_ms(self)

    @cython.locals(bridge=OFBridge)
    cpdef _cache_key(self, bridge, key)

    @cython.locals(e=FastEntry, off=OffloadManager)
    cpdef _fast(self, bridge, pkt, key, frame, now, kernel_miss=*)

    @cython.locals(off=OffloadManager, bridge=OFBridge)
    cpdef _fast_table(self, bridge, pkt, key, frame, now, kernel_miss)

    @cython.locals(bridge=OFBridge, by_no=dict, p=Port)
    cpdef _emit(self, bridge, pkt, key, frame, outputs, extra, defrag=*)

    @cython.locals(tr=Translation, om=OffloadManager, hp=Packet, cv=CtVerdict, cc=Conn, tcp=bint)
    cpdef _slow(self, bridge, pkt, key, frame, now)

    @cython.locals(peers=dict)
    cpdef _note_peer(self, c, reply, key, was)

    @cython.locals(tr=Translation)
    cpdef _cache_peer(self, bridge, conn, l2, now)

    cpdef _maybe_cache(self, bridge, key, Translation tr, now)

    @cython.locals(entry=FastEntry, i=Py_ssize_t, bridge=OFBridge)
    cpdef _cache(self, bridge, key, ck, conn, reply, Translation tr, now)

    @cython.locals(e=FastEntry)
    cpdef _uncache(self, ck)

    @cython.locals(e=FastEntry)
    cpdef forget_conn(self, conn)
