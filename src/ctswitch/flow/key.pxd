# Augmenting declarations for key.py: extract reads the packet as a Packet (packet/headers.pxd).
from ctswitch.packet.headers cimport Packet

cpdef extract(Packet pkt, in_port)
