# Augmenting declarations for rewrite.py: the functions reading a packet's offsets become cpdef
# with the packet typed Packet (packet/headers.pxd); the other arguments stay Python objects.
# _nat4 (the NAT of a slow-path IPv4 TCP/UDP packet) reads and writes its bytearray with C
# offsets and does its checksum arithmetic in 64-bit C integers: its values are bounded (bytes,
# 16/32-bit fields checked in range before, sums < 2**35), every byte stored is masked to 0..255,
# and % keeps Python's sign rule (cdivision is off), so the results are Python's.
cimport cython
from ctswitch.packet.headers cimport Packet

# The flow key's field indices and the header constants this module imports, as C integers: a
# key read with one is an indexed list read, a test with one C arithmetic, instead of a
# module-global lookup and a Python int operation.  They are no longer attributes of the compiled
# module (nothing imports them from here).
cdef Py_ssize_t DL_DST, DL_SRC, IPV6_DST, IPV6_LABEL, IPV6_SRC, NW_DST, NW_ECN, NW_SRC, NW_TOS
cdef Py_ssize_t NW_TTL, TP_DST, TP_SRC
cdef long FRAG_LATER, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP

cdef tuple _OUTSIDE_NAT4

cpdef _l4_csum_off(Packet pkt, b)
cpdef apply(frame, Packet pkt, old_key, new_key)
cpdef _apply_fields(b, Packet pkt, diff, new_key)

@cython.locals(i=Py_ssize_t)
cdef bint _same_outside_nat4(old_key, new_key) except -1

@cython.locals(s=cython.longlong)
cdef long long _update(long long c, long long old, long long new) noexcept

@cython.locals(l3=Py_ssize_t, l4=Py_ssize_t, n=Py_ssize_t, coff=Py_ssize_t, b=bytearray, tcp=bint,
               s32=cython.longlong, d32=cython.longlong, s16=cython.longlong, d16=cython.longlong,
               os_=cython.longlong, od=cython.longlong, ops=cython.longlong, opd=cython.longlong,
               c=cython.longlong)
cpdef _nat4(frame, Packet pkt, old_key, new_key)
cpdef _nat4_struct(b, Packet pkt, ns, nd, ps, pd)
cpdef _apply_nat4(b, Packet pkt, diff, new_key)
cpdef set_icmp_id(frame, Packet pkt, new_id)
