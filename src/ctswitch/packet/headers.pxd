# Augmenting declarations for headers.py: Packet becomes an extension type whose slots are
# ``public object`` fields (the same Python values), read as struct members where a variable is
# typed Packet (conntrack/tcp.pxd, packet/codec.pxd).

cimport cython


cdef class Packet:
    cdef public object frame, drop
    cdef public object dl_dst, dl_src, vlans, dl_type, l3
    cdef public object arp_op, arp_sha, arp_tha
    cdef public object ip_ver, nw_src, nw_dst, nw_proto, nw_tos, nw_ttl, nw_frag
    cdef public object ip_options, ipv6_label, ip_len
    cdef public object l4, tp_src, tp_dst, tcp_flags, tcp_seq, tcp_ack, tcp_win
    cdef public object tcp_wscale, tcp_sack_perm, icmp_id, icmp_seq
    cdef public object payload, payload_len, inner, inner_off


# A new packet's fields, stored as struct members (Packet.__init__ and blank); blank is
# Packet(frame) without the constructor call (tp_new, then _fill), a C call from codec.parse.
cpdef _fill(Packet pkt, frame)

@cython.locals(pkt=Packet)
cpdef Packet blank(frame)
