# Augmenting declarations for datapath.py.
# FastEntry: an extension type with ``public object`` fields (its slots).
# Datapath: an extension type with an instance __dict__ (attributes set from outside, and instance
# attributes that shadow methods, e.g. the tests' and bench_slowpath --split's wrappers of
# _cache_peer, _emit and _maybe_cache, still work); every attribute its own code sets is a
# ``public object`` field (so the __dict__ stays empty and the cpdef methods' override check
# stays cached).  The per-packet methods are cpdef (calls between them are C calls), with the
# translation, the cached entry and the offload manager typed: their fields are struct member
# reads, the manager's hw_hit/sw_hit C calls.  The manager stays untyped in _slow: a typed call
# of consider/teardown (keyword-only arguments) would hand an instance attribute shadowing them
# (bench_slowpath --split's timer) every argument positionally.  _cache_peer stays a def (its
# lambda is a closure, which a cpdef method cannot hold).  Packets, connections and verdicts stay untyped:
# typing them measured no gain, and cimporting headers, conn or tracker would tie this module's
# loading to theirs (tests/unit/test_native.py lists who depends on them).
cimport cython
from ctswitch.offload.manager cimport OffloadManager
from ctswitch.ofproto.xlate cimport Translation


cdef class FastEntry:
    cdef public object generation, cid, tracker, reply, outputs, rules, extra, packets, bytes
    cdef public object used, created, learns


cdef class Datapath:
    cdef dict __dict__
    cdef public object switch, cache, by_conn, batch, megaflows, _peer_l2, _params_version, _aging
    cdef public object stats, drops, next_tick

    cpdef receive(self, bridge, in_port, frame, now, _kernel_miss=*)

    cpdef _mac_aging_ms(self)

    cpdef _cache_key(self, bridge, key)

    @cython.locals(e=FastEntry, off=OffloadManager)
    cpdef _fast(self, bridge, pkt, key, frame, now, kernel_miss=*)

    @cython.locals(off=OffloadManager)
    cpdef _fast_table(self, bridge, pkt, key, frame, now, kernel_miss)

    cpdef _emit(self, bridge, pkt, key, frame, outputs, extra, defrag=*)

    @cython.locals(tr=Translation)
    cpdef _slow(self, bridge, pkt, key, frame, now)

    cpdef _note_peer(self, c, reply, key, was)

    cpdef _maybe_cache(self, bridge, key, Translation tr, now)

    @cython.locals(entry=FastEntry)
    cpdef _cache(self, bridge, key, ck, conn, reply, Translation tr, now)

    @cython.locals(e=FastEntry)
    cpdef _uncache(self, ck)

    @cython.locals(e=FastEntry)
    cpdef forget_conn(self, conn)
