# Augmenting declarations for conn.py (Cython pure-Python mode: the .py also runs as plain Python).
# Conn/TcpConn become extension types: every slot is a ``public object`` field (Python ints,
# None, tuples: the same values and semantics), read and written as a struct member by the
# modules that cimport these types and type their variables with them; except TcpConn's twelve
# 32-bit sequence-space fields (WIDE_FIELDS), C unsigned ints behind properties (see below).

cdef class Conn:
    cdef public object id, zone, ip_ver, proto, orig, reply, status, state, expires, timeout
    cdef public object mark, label, pk0, pk1, by0, by1, created, helper, related, offload, why
    cdef public object confirmed, ext


cdef class TcpConn(Conn):
    # WIDE_FIELDS: C unsigned 32-bit integers (no int object per field: a struct read and write),
    # under their names with a leading underscore; the names without it are properties (conn.py)
    # that keep any other value (a negative, a wider int, None, a bool...) in ``odd``.
    cdef public unsigned int _end0, _maxend0, _maxwin0, _maxack0, _end1, _maxend1, _maxwin1, _maxack1
    cdef public unsigned int _last_seq, _last_ack, _last_end, _last_win
    cdef public object odd, scale0, flags0, scale1, flags1, wide
    cdef public object last_dir, last_index, last_wscale, last_flags, retrans

    # Direct C calls from the tracker and tcp (a TcpConn has no __dict__: nothing overrides them).
    cpdef pack(self)

    cpdef unpack(self)

# The fields of a new connection, set by both constructors through one C call.
cdef _init_conn(Conn c, zone, ip_ver, proto, orig, reply, now)

# False compiled: the WIDE_FIELDS properties keep a value no C field holds in ``odd``.
cdef bint _DIRECT
