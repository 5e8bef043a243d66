# Augmenting declarations for conn.py (Cython pure-Python mode: the .py also runs as plain Python).
# Conn/TcpConn become extension types: every slot is a ``public object`` field (Python ints,
# None, tuples: the same values and semantics), read and written as a struct member by the
# modules that cimport these types and type their variables with them.

cdef class Conn:
    cdef public object id, zone, ip_ver, proto, orig, reply, status, state, expires, timeout
    cdef public object mark, label, pk0, pk1, by0, by1, created, helper, related, offload, why
    cdef public object confirmed, ext


cdef class TcpConn(Conn):
    cdef public object end0, maxend0, maxwin0, maxack0, scale0, flags0
    cdef public object end1, maxend1, maxwin1, maxack1, scale1, flags1, wide
    cdef public object last_dir, last_index, last_seq, last_ack, last_end, last_win
    cdef public object last_wscale, last_flags, retrans

    # Direct C calls from the tracker and tcp (a TcpConn has no __dict__: nothing overrides them).
    cpdef pack(self)

    cpdef unpack(self)

# The fields of a new connection, set by both constructors through one C call.
cdef _init_conn(Conn c, zone, ip_ver, proto, orig, reply, now)
