"""Connection tracking helpers (ALGs): FTP and TFTP, and the expectations they create.

Theory of operation
-------------------
``ct(commit,alg=ftp|tftp)`` attaches a helper to the connection it commits (OVS:
``ovs_ct_add_helper``).  From then on every packet of that connection that goes through a
ct() lookup is shown to the helper (``ovs_ct_helper``), which reads the payload and may
*expect* a new connection: a data channel announced by the control channel.  A later new
connection that matches an expectation is *related* (``ct_state=+rel``, status EXPECTED)
instead of new, and the expectation is used up.  Related connections and connections with
a helper are never offloaded (the offload policy already says so).

What each helper looks for (``net/netfilter/nf_conntrack_ftp.c``, ``nf_conntrack_tftp.c``):

* FTP, on TCP packets of an established connection: from the client (original direction)
  ``PORT h1,h2,h3,h4,p1,p2`` and ``EPRT |1|addr|port|`` / ``EPRT |2|addr|port|``; from the
  server (reply direction) ``227 ... (h1,h2,h3,h4,p1,p2)`` and ``229 ... (|||port|)``.  The
  command must start the segment's payload (PORT/EPRT case-insensitive).  The expected
  connection goes from the other side (any source port) to the address and port announced;
  as with the module's default ``loose=0``, an announced address other than the sender's
  own creates nothing.  EPSV (229) announces a port on the sender's address.
* TFTP, on UDP packets from the client: a read (opcode 1) or write (2) request expects the
  server's answer from any source port to the client's address and port.

An expectation lives 300 s (both helpers' ``expect_policy``), a connection keeps one at a
time (``max_expected`` 1: a new one replaces the old), and it goes when its master goes.

Not modelled: the NAT helpers (``nf_nat_ftp``/``nf_nat_tftp``), which rewrite the announced
address of a NATed control connection and map the data connection like its master; on a
NATed connection ctswitch creates expectations from the addresses as they are at ct().
"""

from __future__ import annotations

import re

ALG_FTP = 21
ALG_TFTP = 69
HELPER_NAMES = {ALG_FTP: "ftp", ALG_TFTP: "tftp"}
EXPECT_TIMEOUT_MS = 300_000

_RFC959 = re.compile(rb"(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})")


class Expectation:
    """A connection some helper expects: ``proto`` from ``src`` (any source port) to
    ``dst``:``dport`` in ``zone``, until ``expires``; ``master`` is the announcing connection."""

    __slots__ = ("zone", "ip_ver", "proto", "src", "dst", "dport", "master", "expires", "helper")

    def __init__(self, zone, ip_ver, proto, src, dst, dport, master, expires, helper) -> None:
        self.zone = zone
        self.ip_ver = ip_ver
        self.proto = proto
        self.src = src
        self.dst = dst
        self.dport = dport
        self.master = master
        self.expires = expires
        self.helper = helper

    @property
    def key(self) -> tuple:
        return (self.zone, self.ip_ver, self.proto, self.src, self.dst, self.dport)


def _v4(parts) -> int | None:
    nums = [int(x) for x in parts]
    if any(n > 255 for n in nums):
        return None
    return (nums[0] << 24) | (nums[1] << 16) | (nums[2] << 8) | nums[3]


def _rfc959(data: bytes) -> tuple[int, int, int] | None:
    """(ip_ver 4, address, port) of ``h1,h2,h3,h4,p1,p2`` at the start of ``data``."""
    m = _RFC959.match(data)
    if m is None:
        return None
    addr = _v4(m.groups()[:4])
    p1, p2 = int(m.group(5)), int(m.group(6))
    if addr is None or p1 > 255 or p2 > 255:
        return None
    return 4, addr, (p1 << 8) | p2


def _eprt(data: bytes) -> tuple[int, int, int] | None:
    """``|1|a.b.c.d|port|`` or ``|2|v6addr|port|`` (RFC 2428); any delimiter character."""
    import ipaddress
    if len(data) < 6:
        return None
    delim = data[:1]
    parts = data[1:].split(delim)
    if len(parts) < 4 or parts[0] not in (b"1", b"2"):
        return None
    try:
        a = ipaddress.ip_address(parts[1].decode("ascii"))
        port = int(parts[2])
    except ValueError:
        return None
    if (a.version == 4) != (parts[0] == b"1") or not 0 < port < 65536:
        return None
    return a.version, int(a), port


def _epsv(data: bytes) -> int | None:
    """The port of a ``229`` reply's ``(|||port|)``."""
    i = data.find(b"(")
    if i < 0 or len(data) < i + 6:
        return None
    d = data[i + 1:i + 2]
    if data[i + 2:i + 4] != d + d:
        return None
    j = data.find(d, i + 4)
    if j < 0:
        return None
    try:
        port = int(data[i + 4:j])
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def ftp_announce(payload: bytes, reply: bool) -> tuple[int, int | None, int] | None:
    """(ip_ver, address or None for "the sender's own", port) an FTP segment announces."""
    if not reply:
        head = payload[:5].upper()
        if head == b"PORT ":
            return _rfc959(payload[5:].lstrip(b" "))
        if head == b"EPRT ":
            return _eprt(payload[5:].lstrip(b" "))
        return None
    if payload.startswith(b"227 "):
        i = payload.find(b"(", 4)
        if i < 0:  # RFC 959 allows the numbers without parentheses: the first digit run
            m = _RFC959.search(payload, 4)
            return _rfc959(payload[m.start():]) if m else None
        return _rfc959(payload[i + 1:])
    if payload.startswith(b"229 "):
        port = _epsv(payload[4:])
        return (0, None, port) if port is not None else None
    return None


def tftp_request(payload: bytes) -> bool:
    """True for a TFTP read or write request (opcode 1 or 2)."""
    return len(payload) >= 2 and payload[0] == 0 and payload[1] in (1, 2)
