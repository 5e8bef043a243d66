# Augmenting declarations for rewrite.py: the functions reading a packet's offsets become cpdef
# with the packet typed Packet (packet/headers.pxd); the other arguments stay Python objects.
from ctswitch.packet.headers cimport Packet

cpdef _l4_csum_off(Packet pkt, b)
cpdef apply(frame, Packet pkt, old_key, new_key)
cpdef _apply_fields(b, Packet pkt, diff, new_key)
cpdef _nat4(frame, Packet pkt, old_key, new_key)
cpdef _apply_nat4(b, Packet pkt, diff, new_key)
cpdef set_icmp_id(frame, Packet pkt, new_id)
