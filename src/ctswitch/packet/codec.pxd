# Augmenting declarations for codec.py: ``Packet`` is the extension type of headers.pxd, so
# ``pkt = blank(frame)`` (headers.pxd: a C call) is typed and its stores are struct member writes; the helpers taking
# the packet become cpdef with it typed.  parse reads the headers from a ``bytes`` object, so a
# read is a C array access (bounds-checked; every read is after its length check), and the
# offsets and header fields are C integers: bytes, 16-bit words, and 32/48-bit values built in
# 64-bit variables (parse/_l4 read a wide field's top byte into ``x``/``w`` first), so nothing
# overflows and every value stored in the packet is the one Python computes.
cimport cython
from ctswitch.packet.headers cimport Packet, blank

@cython.locals(pkt=Packet, data=bytes, n=Py_ssize_t, off=Py_ssize_t, w=cython.longlong, x=cython.longlong,
               t=cython.long, vihl=cython.long, ihl=Py_ssize_t, proto=cython.long, tot=Py_ssize_t,
               end=Py_ssize_t, l4=Py_ssize_t, ff=cython.long)
cpdef parse(frame)

cpdef _ipv6(Packet pkt, frame, off, n)

@cython.locals(x=cython.longlong, doff=cython.long, hl=Py_ssize_t)
cpdef _l4(Packet pkt, bytes frame, Py_ssize_t l4, Py_ssize_t end, long proto)

@cython.locals(inner=Packet)
cpdef _quoted(Packet pkt, frame, q, end, ver)

cpdef _tcp_options(Packet pkt, frame, p, end)
