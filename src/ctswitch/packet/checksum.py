"""Internet checksum (RFC 1071) and its incremental update (RFC 1624).

Theory of operation
-------------------
The ones' complement sum of 16-bit big-endian words is the value of the byte
string, read as one big-endian integer, modulo 0xFFFF (because 2**16 is 1
modulo 0xFFFF).  So ``int.from_bytes(data) % 0xFFFF`` sums a whole header or
segment in C, without a Python loop; the only subtlety is ones' complement's
two zeros: a sum of non-zero data that is 0 modulo 0xFFFF is 0xFFFF ("negative
zero"), which is what folding with end-around carry gives.

Incremental update (RFC 1624 eqn. 3): ``HC' = ~(~HC + ~m + m')``.  Working
modulo 0xFFFF, ``~m`` is ``-m``, so the same trick handles a 16-, 32- or
128-bit field in one step (``update``).  Fields must start at an even offset
of the checksummed range (all the header fields we rewrite do).

All functions are pure and take/return plain ints.
"""

from __future__ import annotations

_M = 0xFFFF


def sum16(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """Ones' complement sum (folded, not complemented) of ``data`` plus ``start``.

    An odd trailing byte is padded with a zero byte, as RFC 1071 says.
    """
    v = int.from_bytes(data, "big")
    if len(data) & 1:
        v <<= 8
    v += start
    s = v % _M
    if s == 0 and v:
        return _M
    return s


def csum16(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The Internet checksum of ``data`` (with an optional pre-summed ``start``, e.g. a pseudo-header).

    Verifying: the checksum of data that contains a correct checksum field is 0.
    """
    return ~sum16(data, start) & _M


def fold(s: int) -> int:
    """Folds a non-negative running sum to 16 bits (0 stays 0, else 1..0xFFFF)."""
    if s == 0:
        return 0
    s %= _M
    return s or _M


def pseudo4(src: int, dst: int, proto: int, length: int) -> int:
    """Unfolded sum of the IPv4 pseudo-header (addresses as 32-bit ints)."""
    return (src >> 16) + (src & _M) + (dst >> 16) + (dst & _M) + proto + length


def pseudo6(src: int, dst: int, nh: int, length: int) -> int:
    """Unfolded sum of the IPv6 pseudo-header (addresses as 128-bit ints); reduced modulo 0xFFFF."""
    return src % _M + dst % _M + nh + (length >> 16) + (length & _M)


def update(csum: int, old: int, new: int) -> int:
    """RFC 1624: the checksum after a field (any whole number of 16-bit words) changes from old to new.

    ``old``/``new`` are the field values as big-endian ints (16, 32 or 128 bits).
    """
    s = ((~csum & _M) - old % _M + new % _M) % _M
    return ~(s or _M) & _M


def incremental(old_csum: int, old_bytes: bytes, new_bytes: bytes) -> int:
    """RFC 1624 update for a byte range (even length, even offset) changing from old to new bytes."""
    return update(old_csum, int.from_bytes(old_bytes, "big"), int.from_bytes(new_bytes, "big"))


def ipv4_header_ok(frame: bytes | bytearray, l3: int, ihl: int) -> bool:
    """True when the IPv4 header checksum at ``l3`` is correct."""
    return sum16(frame[l3:l3 + ihl]) == _M


def l4_csum4(src: int, dst: int, proto: int, segment: bytes | bytearray | memoryview) -> int:
    """TCP/UDP checksum of an IPv4 segment whose checksum field is zero."""
    return csum16(segment, pseudo4(src, dst, proto, len(segment)))


def l4_csum6(src: int, dst: int, nh: int, segment: bytes | bytearray | memoryview) -> int:
    """TCP/UDP/ICMPv6 checksum of an IPv6 upper-layer packet whose checksum field is zero."""
    return csum16(segment, pseudo6(src, dst, nh, len(segment)))
