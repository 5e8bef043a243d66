# Augmenting declarations for manager.py.
# OffloadRecord: an extension type with ``public object`` fields (its slots).
# OffloadManager: an extension type with an instance __dict__ (attributes set from outside and
# instance attributes that shadow methods still work); every attribute its own code sets is a
# ``public object`` field.  The per-packet methods (hw_hit, sw_hit and what they call, the
# teardown) are cpdef with the record local typed, so its fields are struct member reads.  The
# connection stays untyped (any connection object with the attributes is accepted), and
# _freeze is left alone (its sys.getrefcount test counts the references of plain locals).
cimport cython


cdef class OffloadRecord:
    cdef public object state, pattern, since, hw_since, last_used, last_try, g1, g2, hent
    cdef public object sw_packets, sw_bytes, hw_packets, hw_bytes, uni, seq


cdef class OffloadManager:
    cdef dict __dict__
    cdef public object params, tracker, fdb, hw_rules, n_sw, n_hw, n_uni, stats, refused
    cdef public object ineligible, torn, _conns, _heap, _ver, _timeouts, cfg, max_conns, skip_hw
    cdef public object teardown_hook, compaction, _seq, _disordered, _cold_new, _cold_retry
    cdef public object _cold_busy, _offloads, _cold_min, _pats, _pat_ids

    cpdef _sync(self)

    @cython.locals(rec=OffloadRecord)
    cpdef consider(self, conn, now, ct_committed_path=*, pkt=*)

    cpdef _try_hw(self, conn, OffloadRecord rec, now)

    cpdef _make_bidirectional(self, conn, OffloadRecord rec, now)

    cpdef _insert_rules(self, OffloadRecord rec, n=*)

    @cython.locals(rec=OffloadRecord)
    cpdef hw_hit(self, conn, now, nbytes=*, reply=*)

    @cython.locals(rec=OffloadRecord)
    cpdef hits(self, conn, now, packets, nbytes, reply, hw)

    @cython.locals(rec=OffloadRecord)
    cpdef sw_hit(self, conn, now, nbytes=*, reply=*, tcp_flags=*)

    cpdef _retry(self, conn, OffloadRecord rec, now)

    @cython.locals(rec=OffloadRecord)
    cpdef flow_hit(self, conn, now, nbytes, reply, tcp_flags)

    cpdef teardown(self, conn, why, now, deleted=*)

    @cython.locals(rec=OffloadRecord)
    cpdef _teardown(self, conn, why, now, fixup)
