"""The parsed view of one frame: every field OpenFlow and conntrack look at.

Theory of operation
-------------------
``codec.parse(frame)`` fills one ``Packet`` straight from the bytes at fixed
offsets.  A ``Packet`` is a flat record (``__slots__``, ints only), not a tree of
header objects: the slow path reads the fields it needs and the fast path never
builds one at all.

Rules:
1. A malformed frame never raises: ``drop`` holds a short reason
   (``"truncated ipv4 header"``, ``"bad ihl"``...) and the fields parsed so far
   stay valid.  Callers count and drop such packets.
2. Addresses are ints (IPv4 32-bit, IPv6 128-bit, MAC 48-bit), ports and
   flags are host-order ints.  A field a frame does not have is 0.
3. Offsets (``l3``, ``l4``, ``payload``) index into ``frame`` so rewrites can
   patch the bytes in place.
"""

from __future__ import annotations

# nw_frag bits, as OVS's FLOW_NW_FRAG_ANY / FLOW_NW_FRAG_LATER.
FRAG_ANY = 0x1  # the packet is a fragment (first or later)
FRAG_LATER = 0x2  # the packet is a fragment with a non-zero offset

# TCP flag bits as in the TCP header (OVS tcp_flags order).
TCP_FIN = 0x001
TCP_SYN = 0x002
TCP_RST = 0x004
TCP_PSH = 0x008
TCP_ACK = 0x010
TCP_URG = 0x020
TCP_ECE = 0x040
TCP_CWR = 0x080
TCP_NS = 0x100

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_IPV6 = 0x86DD
ETH_TYPE_VLAN = 0x8100
ETH_TYPE_QINQ = 0x88A8

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58
IPPROTO_SCTP = 132


class Packet:
    """One parsed frame.

    Attributes:
        frame: the frame bytes as received (bytes or bytearray).
        drop: None, or the reason the frame is malformed (then it is dropped).
        dl_dst, dl_src: Ethernet addresses, 48-bit ints.
        vlans: 802.1Q/802.1ad TCIs, outermost first (empty when untagged).
        dl_type: the innermost Ethernet type (after VLAN tags).
        l3: offset of the L3 header in ``frame`` (-1 when none).
        arp_op, arp_sha, arp_tha: ARP opcode and hardware addresses (48-bit ints).
        ip_ver: 0 (not IP), 4 or 6.  For ARP, nw_src/nw_dst hold spa/tpa.
        nw_src, nw_dst: IPv4 (32-bit) or IPv6 (128-bit) addresses as ints.
        nw_proto: IP protocol / IPv6 final next header (after extension headers).
        nw_tos: the whole IPv4 TOS / IPv6 traffic-class byte (DSCP << 2 | ECN).
        nw_ttl: IPv4 TTL or IPv6 hop limit.
        nw_frag: 0, FRAG_ANY, or FRAG_ANY|FRAG_LATER.
        ip_options: True when the IPv4 header has options (IHL > 5).
        ipv6_label: IPv6 flow label (20 bits).
        ip_len: L3 length from the header (IPv4 total length / IPv6 40+payload length).
        l4: offset of the L4 header (-1 when none or a later fragment).
        tp_src, tp_dst: L4 ports; for ICMP/ICMPv6, type and code (as OVS does).
        tcp_flags: TCP flags (FIN=0x1 ... NS=0x100).
        tcp_seq, tcp_ack: sequence and acknowledgement numbers.
        tcp_win: raw window field (unscaled).
        tcp_wscale: window-scale option shift, or -1 when the option is absent.
        tcp_sack_perm: True when the SACK-permitted option is present.
        icmp_id: ICMP/ICMPv6 echo identifier (0 for other types).
        icmp_seq: ICMP/ICMPv6 echo sequence number.
        payload: offset of the L4 payload in ``frame``.
        payload_len: L4 payload length in bytes (from the IP length, not the frame).
        inner: for ICMP/ICMPv6 errors, the parsed quoted packet (ip_ver, addresses,
            nw_proto, tp_src/tp_dst, icmp_id set; frame is the quoted bytes), else None.
        inner_off: offset of the quoted IP header in ``frame`` (-1 when no ``inner``).
    """

    __slots__ = (
        "frame", "drop",
        "dl_dst", "dl_src", "vlans", "dl_type", "l3",
        "arp_op", "arp_sha", "arp_tha",
        "ip_ver", "nw_src", "nw_dst", "nw_proto", "nw_tos", "nw_ttl", "nw_frag",
        "ip_options", "ipv6_label", "ip_len",
        "l4", "tp_src", "tp_dst", "tcp_flags", "tcp_seq", "tcp_ack", "tcp_win",
        "tcp_wscale", "tcp_sack_perm", "icmp_id", "icmp_seq",
        "payload", "payload_len", "inner", "inner_off",
    )

    def __init__(self, frame: bytes | bytearray = b"") -> None:
        _fill(self, frame)

    def __repr__(self) -> str:  # for test failures only
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__ if k != "frame")
        return f"Packet({fields})"


def _fill(pkt: Packet, frame) -> None:
    """A new packet's fields (``Packet.__init__``, ``blank``): nothing parsed yet."""
    pkt.frame = frame
    pkt.drop = None
    pkt.dl_dst = 0
    pkt.dl_src = 0
    pkt.vlans = ()
    pkt.dl_type = 0
    pkt.l3 = -1
    pkt.arp_op = 0
    pkt.arp_sha = 0
    pkt.arp_tha = 0
    pkt.ip_ver = 0
    pkt.nw_src = 0
    pkt.nw_dst = 0
    pkt.nw_proto = 0
    pkt.nw_tos = 0
    pkt.nw_ttl = 0
    pkt.nw_frag = 0
    pkt.ip_options = False
    pkt.ipv6_label = 0
    pkt.ip_len = 0
    pkt.l4 = -1
    pkt.tp_src = 0
    pkt.tp_dst = 0
    pkt.tcp_flags = 0
    pkt.tcp_seq = 0
    pkt.tcp_ack = 0
    pkt.tcp_win = 0
    pkt.tcp_wscale = -1
    pkt.tcp_sack_perm = False
    pkt.icmp_id = 0
    pkt.icmp_seq = 0
    pkt.payload = -1
    pkt.payload_len = 0
    pkt.inner = None
    pkt.inner_off = -1


def blank(frame) -> Packet:
    """``Packet(frame)`` without the constructor call (no argument tuple, no ``__init__``
    lookup): how ``codec.parse`` builds its packets, once per frame."""
    pkt = Packet.__new__(Packet)
    _fill(pkt, frame)
    return pkt
