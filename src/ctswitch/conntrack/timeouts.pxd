# Augmenting declarations for timeouts.py: Timeouts becomes an extension type whose slots are
# ``public object`` fields (read as struct members where typed: conntrack/tcp.pxd).

cdef class Timeouts:
    cdef public object version, ext, tcp, tcp_retrans, tcp_unack, udp, udp_stream, icmp
    cdef public object icmpv6, generic, be_liberal, loose, ignore_invalid_rst
    cdef public object max_retrans, conntrack_max, acct, flow_tcp, flow_udp
