"""io.afpacket.MmsgIO on a unix datagram socket pair (no root, no interface): recvmmsg into
the slots of its buffer, capped at RX_SLOTS for a buffer of its own, and sendmmsg of buffer
slices, in order, on the send socket it was given (``tx_fd``: a port's send-only socket)."""

from __future__ import annotations

import socket

import pytest

from ctswitch.io import afpacket as A

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.skipif(not A.mmsg_available(), reason="recvmmsg/sendmmsg unusable here")


def _pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (a, b):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    return a, b


def test_own_receive_buffer_is_capped_and_sends_are_not():
    a, _b = _pair()
    with a, _b:
        io = A.MmsgIO(a.fileno(), 1024)
        assert io.rx_n == A.RX_SLOTS == 256
        assert len(io.offsets) == len(io.rx) == A.RX_SLOTS
        assert len(io.buf) == A.RX_SLOTS * A._SLOT
        assert len(io.tx) == 1024  # a round of 1024 frames still goes out in one sendmmsg
        given = np.zeros(4 * A._SLOT, dtype=np.uint8)
        assert A.MmsgIO(a.fileno(), 4, buf=given).rx_n == 4  # the caller's buffer: its slots


def test_recv_fills_slots_in_order_and_stops_at_rx_n():
    a, b = _pair()
    with a, b:
        frames = [bytes([i & 0xFF]) * (20 + i % 50) for i in range(300)]
        for f in frames:
            b.send(f)
        io = A.MmsgIO(a.fileno(), 1024)
        got = []
        for want in (256, 44, 0):
            k = io.recv(1024)
            assert k == want
            lens = io._len[:k].tolist()
            got += [bytes(io.buf[o:o + n]) for o, n in zip(io.offsets[:k].tolist(), lens)]
        assert got == frames


def test_send_goes_out_on_tx_fd_in_order():
    rx_a, rx_b = _pair()
    tx_a, tx_b = _pair()
    with rx_a, rx_b, tx_a, tx_b:
        io = A.MmsgIO(rx_a.fileno(), 8, rx=False, tx_fd=tx_a.fileno())
        data = np.frombuffer(b"".join(bytes([i]) * 16 for i in range(20)), dtype=np.uint8)
        offsets = np.arange(20, dtype=np.int64) * 16
        lengths = np.full(20, 16, dtype=np.int64)
        assert io.send(data.ctypes.data, offsets, lengths) == 0  # 20 frames in rounds of 8
        tx_b.setblocking(False)
        got = [tx_b.recv(64) for _ in range(20)]
        assert got == [bytes([i]) * 16 for i in range(20)]
        rx_b.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing went out on the receiving socket
            rx_b.recv(64)
