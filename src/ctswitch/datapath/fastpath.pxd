# Augmenting declarations for fastpath.py: the batch table's classes (FastTable, its MirrorTable,
# ConnMap, BatchFastPath) become extension types with ``public object`` fields (every attribute
# their own code sets) plus an instance __dict__ (attributes set from outside still work), so
# the slow path's per-connection operations (add_output, the offload insert; forget, the
# teardown; remove and the crediting) read the tables' arrays and counters as struct members.
# Those methods are cpdef with the tables typed: calls between them are C calls.  A Python
# subclass still overrides them (tests/unit/datapath/test_batch_add_reference.py).  The
# offload manager is typed in _credit_conn (its hits a C call), the bridge in the crediting
# (credit_hits, a C call).
cimport cython
from ctswitch.offload.manager cimport OffloadManager
from ctswitch.ofproto.bridge cimport OFBridge, credit_hits


cdef class FastTable:
    cdef dict __dict__
    cdef public object capacity, ent, index, mask, _free, _nfree, generation, _now1, _row, nins

    cpdef insert_row(self, row, staged=*)


cdef class ConnMap:
    cdef dict __dict__
    cdef public object keys, vals, mask, n, _out, kv

    cpdef add(self, cid, v)

    cpdef remove(self, cid, v)

    cpdef get(self, cid)


cdef class MirrorTable(FastTable):
    cdef public object no, sindex, nstale, forget_fn, forget_of, find_fn, find_of, put_fn, put_of
    cdef public object cid1, meta, fpk, fby, fused1, fcreated, mark, shapes, shape_ids, side

    cpdef shape(self, generation, rules, extra, learns=*)

    cpdef find_row(self, row, stale=*)

    cpdef find_flow(self, current, in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport)

    cpdef drop(self, e)

    cpdef live_current(self)


cdef class BatchFastPath:
    cdef dict __dict__
    cdef public object dp, capacity, tables, by_no, names, conns, _fvals, _fout, _sel, _sout, live, dirty

    @cython.locals(t=MirrorTable, conns=ConnMap)
    cpdef add_output(self, ck, generation, cid, reply, port, key, okey, rules, extra, now, learns=*)

    @cython.locals(t=MirrorTable, tables=dict)
    cpdef _target(self, ck, generation)

    @cython.locals(t=MirrorTable)
    cpdef _put(self, ck, generation, row, cid, reply, rules, extra, packets, nbytes, used, created, learns=*)

    @cython.locals(conns=ConnMap)
    cpdef _put_row(self, MirrorTable t, row, generation, cid, reply, rules, extra, packets, nbytes, used, created,
                   learns)

    cpdef remove(self, MirrorTable t, e, cid1=*)

    @cython.locals(t=MirrorTable, conns=ConnMap, by_no=list)
    cpdef forget(self, cid)

    cpdef _credit_one(self, MirrorTable t, e)

    cpdef _credit_taken(self, MirrorTable t)

    cpdef _credit_entry(self, MirrorTable t, bridge, pk, by, used, cid1, meta, src, in_port, out_port)

    cpdef _credit_conn(self, MirrorTable t, bridge, conn, OffloadManager off, stats, pk, by, used, meta, src, in_port,
                       out_port)
