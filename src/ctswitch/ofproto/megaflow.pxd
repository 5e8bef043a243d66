# Augmenting declarations for megaflow.py: Program and MegaflowCache become extension types
# (``public object`` fields); lookup/peek are cpdef with their tables typed, so a replayed pass
# reads the program's ops, rules and mask as struct members (xlate.pxd cimports Program).
# _masked (a subtable's masked values of a key) is a C function building its tuple directly.
cimport cython


@cython.locals(i=Py_ssize_t)
cdef object _mv(key, tuple idx, tuple ands, Py_ssize_t j)

@cython.locals(n=Py_ssize_t, j=Py_ssize_t)
cdef tuple _masked(key, tuple idx, tuple ands)


cdef class Program:
    cdef public object ops, rules, wc, _wsrc, _wprev, _wcomb

    @cython.locals(comb=list)
    cpdef list wc_after(self, prev)


cdef class MegaflowCache:
    cdef public object limit, _tables, n, hits, misses, inserted, flushed

    @cython.locals(tt=dict, tables=dict, e=tuple, subtables=list, st=tuple, d=dict, j=Py_ssize_t)
    cpdef lookup(self, bridge, table, key)

    @cython.locals(tables=dict, e=tuple, st=tuple, d=dict)
    cpdef peek(self, bridge, table, key)
