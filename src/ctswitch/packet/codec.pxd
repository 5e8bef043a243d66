# Augmenting declarations for codec.py: ``Packet`` is the extension type of headers.pxd, so
# ``pkt = Packet(frame)`` is typed and its stores are struct member writes; the helpers taking
# the packet become cpdef with it typed (other arguments stay Python objects).
cimport cython
from ctswitch.packet.headers cimport Packet

@cython.locals(pkt=Packet)
cpdef parse(frame)

cpdef _ipv6(Packet pkt, frame, off, n)

cpdef _l4(Packet pkt, frame, l4, end, proto)

@cython.locals(inner=Packet)
cpdef _quoted(Packet pkt, frame, q, end, ver)

cpdef _tcp_options(Packet pkt, frame, p, end)
