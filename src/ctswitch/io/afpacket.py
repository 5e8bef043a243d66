"""AF_PACKET ports: a bridge port bound to a real Linux interface.

Theory of operation
-------------------
``AfPacketPort(ifname, vnet=, ring=)`` opens a ``SOCK_RAW`` packet socket
(protocol 0: it receives nothing until everything is set up), then binds it to
the interface for every protocol, joins it in promiscuous mode
(``PACKET_ADD_MEMBERSHIP``, released when the socket closes), and sets:

* ``PACKET_IGNORE_OUTGOING``: our own transmissions are not read back;
* ``PACKET_QDISC_BYPASS``: ``send`` goes straight to the driver (a switch
  port has no use for the qdisc) -- except on a vnet port whose device has no
  TSO: the bypass drops a GSO frame the device cannot take whole, the qdisc
  path segments it;
* ``PACKET_AUXDATA``: every frame comes with the kernel's metadata.  The
  kernel always strips an 802.1Q/802.1ad tag before packet taps see the frame
  (the tag travels beside the data); the port puts it back in the frame, so the
  datapath sees what was on the wire.  Metadata also says when the L4 checksum
  is only partial (``TP_STATUS_CSUMNOTREADY``: the sender left it to an
  offload); without vnet the port completes it in software and counts it;
* ``PACKET_VNET_HDR`` (``vnet=True``): every frame comes with, and is sent
  with, a ``virtio_net_hdr`` (``io.vnet``): GSO/GRO super-frames of up to
  64 KB pass whole and partial checksums stay partial.  The port then turns
  rx/tx checksum, scatter-gather, TSO, GSO and GRO *on* (``VNET_OFFLOADS``);
  without vnet it turns them off (frames at most MTU-sized, fully checksummed);
* a ``TPACKET_V2`` receive ring (``ring=True``, ``RingIO``): the kernel copies
  each frame into the next slot of a ring mapped in our memory.

Frames are sent on a second, send-only socket (``tx_sock``: same vnet and
qdisc settings, bound with protocol 0, in no selector): see ``_tx_socket``.

Reading is a non-blocking drain: ``recv_batch(n)`` returns up to ``n`` frames
as bytes (from the ring, or one ``recvmsg`` each) and stops when none is
waiting; the event loop polls only when every port is empty.  Batched I/O
(used once the loop runs the batched datapath): ``recv_frames(n)`` returns
one NumPy buffer and the offsets/lengths of the frames in it, without a
Python object per frame -- straight from the ring, or one ``recvmmsg`` into a
preallocated buffer (``MmsgIO``, libc through ctypes; frame ``i`` in slot
``i``, its sockaddr and auxdata in two more arrays).  Either way the few
frames that need a VLAN tag back (or a checksum completed) are found with
vectorised compares and fixed one by one; on a vnet port each frame's
virtio_net_hdr is the 10 bytes before it.  ``send_frames(addr, offsets,
lengths, hdrs)`` sends slices of any buffer with ``sendmmsg``, in order, a
refused frame counted and skipped.  A pending socket error (``ENETDOWN`` when
the link goes down) is counted in ``rx_errors``, never raised; frames the
kernel dropped because we were too slow are in ``kernel_drops()``.

``set_offloads(ifname, on)`` / ``set_offload_profile`` set the NIC offloads
with the legacy ``SIOCETHTOOL`` ioctls -- the same calls ``ethtool -K`` makes,
without needing the ethtool binary.  ``python -m ctswitch.io.afpacket
offloads-off|offloads-on|show IFNAME...`` does it from a shell (the lab runs it
inside its namespaces for the peers' ends).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys

from .vnet import NEEDS_CSUM, VNET_LEN, ZERO_HDR

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_QDISC_BYPASS = 20
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_COPY_THRESH = 7
PACKET_VERSION = 10
TPACKET_V2 = 1
TP_STATUS_USER = 1
TP_STATUS_COPY = 1 << 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4

TP_STATUS_CSUMNOTREADY = 1 << 3
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
_FIXUPS = TP_STATUS_VLAN_VALID | TP_STATUS_CSUMNOTREADY

SIOCGIFMTU = 0x8921
SIOCETHTOOL = 0x8946
# feature -> (get cmd, set cmd) of the legacy ethtool ioctls (include/uapi/linux/ethtool.h)
ETHTOOL_FEATURES: dict[str, tuple[int, int]] = {
    "rx-checksum": (0x14, 0x15),
    "tx-checksum": (0x16, 0x17),
    "scatter-gather": (0x18, 0x19),
    "tso": (0x1E, 0x1F),
    "gso": (0x23, 0x24),
    "gro": (0x2B, 0x2C),
}
# Turned off in this order: TSO needs SG and tx checksum, so it goes first.
OFFLOAD_ORDER = ("tso", "gso", "gro", "scatter-gather", "tx-checksum", "rx-checksum")
# With PACKET_VNET_HDR (GSO super-frames pass whole, checksums may stay partial): TSO (needs SG
# and tx checksum) so that super-frames leave whole, GRO so that the segments a peer sends are
# merged into super-frames before we read them (docs/live.md "GSO super-frames").
VNET_OFFLOADS = {"rx-checksum": True, "tx-checksum": True, "scatter-gather": True, "tso": True, "gso": True,
                 "gro": True}

RCVBUF = 4 << 20
_AUX = struct.Struct("=IIIHHHH")
_EMPTY = []


def _empty():
    """An empty int64 array (shared, never written)."""
    if not _EMPTY:
        import numpy as np

        _EMPTY.append(np.zeros(0, dtype=np.int64))
    return _EMPTY[0]


_T2 = struct.Struct("=IIIH")    # tpacket2_hdr: tp_status, tp_len, tp_snaplen, tp_mac
_T2V = struct.Struct("=HH")     # tpacket2_hdr at 24: tp_vlan_tci, tp_vlan_tpid
_U32 = struct.Struct("=I")
_VNET = struct.Struct("<BBHHHH")
_MAX_FRAME = 65536 + 4


# ---------------------------------------------------------------------- recvmmsg / sendmmsg
class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


_HEAD = 16                  # a frame's offset in its slot: room for its virtio_net_hdr before it
_SLOT = _MAX_FRAME + 4 + _HEAD  # one received frame per slot; +4: room to put a VLAN tag back
_NAME = 24                  # sockaddr_ll is 20 bytes
_CTL = 64                   # one cmsghdr (16) + tpacket_auxdata (20), padded
_CMSG_HDR = 16              # cmsg_len (size_t), cmsg_level, cmsg_type (int): x86-64/aarch64 layout
_MMSG = None                # (recvmmsg, sendmmsg) from libc, once looked up
RX_SLOTS = 256              # recvmmsg slots of a port without a receive ring (16 MiB)


def _libc():
    """libc through ctypes (mmap/munmap for the packet ring)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.mmap.restype = ctypes.c_void_p
        _LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                               ctypes.c_long]
        _LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return _LIBC


_LIBC = None


def _mmsg_calls():
    """libc's (recvmmsg, sendmmsg) through ctypes, or None when they cannot be used here."""
    global _MMSG
    if _MMSG is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            rx, tx = libc.recvmmsg, libc.sendmmsg
            rx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
            tx.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
            rx.restype = tx.restype = ctypes.c_int
            ok = ctypes.sizeof(ctypes.c_size_t) == 8  # the cmsghdr offsets below assume LP64
            _MMSG = (rx, tx) if ok else False
        except (OSError, AttributeError):
            _MMSG = False
    return _MMSG or None


def mmsg_available() -> bool:
    """True when batched I/O (``MmsgIO``: libc recvmmsg/sendmmsg, numpy) can be used."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return _mmsg_calls() is not None


def _mmsg_dtype():
    import numpy as np

    f = _MsgHdr
    return np.dtype({"names": ["name", "namelen", "iov", "iovlen", "control", "controllen", "flags", "len"],
                     "formats": [np.uint64, np.uint32, np.uint64, np.uint64, np.uint64, np.uint64, np.int32,
                                 np.uint32],
                     "offsets": [f.name.offset, f.namelen.offset, f.iov.offset, f.iovlen.offset, f.control.offset,
                                 f.controllen.offset, f.flags.offset, _MMsgHdr.len.offset],
                     "itemsize": ctypes.sizeof(_MMsgHdr)})


class MmsgIO:
    """Batched receive into one buffer and batched send of buffer slices for one packet socket.

    ``recv(limit)`` runs one ``recvmmsg``: frame ``i`` lands in slot ``i`` of
    ``buf`` (``offsets[i] = i * SLOT + HEAD``; on a vnet socket its
    virtio_net_hdr is the 10 bytes before it), so the frames are ready for the
    batched datapath without a copy.  The arrays stay valid until the next
    ``recv``.  ``send(addr, offsets, lengths, hdrs)`` transmits the slices of
    the memory at ``addr`` with ``sendmmsg``, in order.  ``rx=False``: send only
    (no receive buffer; the port reads through its ``RingIO``).  ``buf``: receive
    into that memory (``n`` slots) instead of a buffer of its own.  ``tx_fd``:
    send on that socket instead (the port's send-only socket).
    """

    def __init__(self, fd: int, n: int, vnet: bool = False, rx: bool = True, buf=None, tx_fd: int | None = None) -> None:
        import numpy as np

        self.fd = fd
        self.tx_fd = fd if tx_fd is None else tx_fd
        self.n = n
        # Receive slots: 64 KiB each (a whole super-frame fits), so a buffer of our own is capped at
        # RX_SLOTS (a round of more frames sends in one go but receives in several recvmmsg).
        self.rx_n = min(n, RX_SLOTS) if buf is None else n
        self.vnet = vnet
        self.errors = 0
        self.last_error = ""
        self.recvmmsg, self.sendmmsg = _mmsg_calls()
        dt = _mmsg_dtype()
        self.size = dt.itemsize
        iov_dt = np.dtype([("base", np.uint64), ("len", np.uint64)])
        k = 2 if vnet else 1  # iovecs per message: [virtio_net_hdr,] frame
        if rx:
            r = self.rx_n
            self.buf = np.zeros(r * _SLOT, dtype=np.uint8) if buf is None else buf  # buf: r slots of the caller's
            self.addr = self.buf.ctypes.data
            self.offsets = np.arange(r, dtype=np.int64) * _SLOT + _HEAD
            self.names = np.zeros((r, _NAME), dtype=np.uint8)
            self.ctl = np.zeros((r, _CTL), dtype=np.uint8)
            self.ctl32 = self.ctl.view(np.uint32)
            self.rx_iov = np.zeros((r, k), dtype=iov_dt)
            self.rx_iov[:, -1]["base"] = self.addr + self.offsets
            self.rx_iov[:, -1]["len"] = _MAX_FRAME
            if vnet:
                self.rx_iov[:, 0]["base"] = self.addr + self.offsets - VNET_LEN
                self.rx_iov[:, 0]["len"] = VNET_LEN
            self.rx = np.zeros(r, dtype=dt)
            self.rx["name"] = self.names.ctypes.data + np.arange(r, dtype=np.uint64) * _NAME
            self.rx["iov"] = self.rx_iov.ctypes.data + np.arange(r, dtype=np.uint64) * (k * iov_dt.itemsize)
            self.rx["iovlen"] = k
            self.rx["control"] = self.ctl.ctypes.data + np.arange(r, dtype=np.uint64) * _CTL
            self.rx_addr = self.rx.ctypes.data
            self._namelen = self.rx["namelen"]
            self._ctllen = self.rx["controllen"]
            self._len = self.rx["len"]
        self.zero_vh = np.zeros(16, dtype=np.uint8)  # header of frames sent without metadata
        self.tx_iov = np.zeros((n, k), dtype=iov_dt)
        self.tx = np.zeros(n, dtype=dt)
        self.tx["iov"] = self.tx_iov.ctypes.data + np.arange(n, dtype=np.uint64) * (k * iov_dt.itemsize)
        self.tx["iovlen"] = k
        self.tx_addr = self.tx.ctypes.data
        self._tx_base = self.tx_iov[:, -1]["base"]
        self._tx_len = self.tx_iov[:, -1]["len"]
        self._tx_hbase = self.tx_iov[:, 0]["base"]
        if vnet:
            self.tx_iov[:, 0]["len"] = VNET_LEN
            self._tx_hbase[:] = self.zero_vh.ctypes.data

    def recv(self, limit: int) -> int:
        """Receives up to ``limit`` (at most ``rx_n``) frames; returns how many (0: none waiting)."""
        k = min(limit, self.rx_n)
        self._namelen[:k] = _NAME
        self._ctllen[:k] = _CTL
        while True:
            r = self.recvmmsg(self.fd, self.rx_addr, k, socket.MSG_DONTWAIT, None)
            if r >= 0:
                return r
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if err not in (errno.EAGAIN, errno.EWOULDBLOCK):
                self.errors += 1  # a pending socket error (ENETDOWN...): reported once, then EAGAIN
                self.last_error = os.strerror(err)
            return 0

    def send(self, addr: int, offsets, lengths, hdrs=None) -> int:
        """Sends the ``len(offsets)`` slices at ``addr``; returns how many the kernel refused.

        ``hdrs``: (vnet sockets) addresses of each frame's virtio_net_hdr; None: no metadata.
        """
        total = len(offsets)
        failed = 0
        done = 0
        vnet = self.vnet
        while done < total:
            m = min(self.n, total - done)
            self._tx_base[:m] = addr + offsets[done:done + m]
            self._tx_len[:m] = lengths[done:done + m]
            if vnet:
                if hdrs is None:
                    self._tx_hbase[:m] = self.zero_vh.ctypes.data
                else:
                    self._tx_hbase[:m] = hdrs[done:done + m]
            i = 0
            while i < m:
                r = self.sendmmsg(self.tx_fd, self.tx_addr + i * self.size, m - i, 0)
                if r > 0:
                    i += r
                    continue
                if r < 0 and ctypes.get_errno() == errno.EINTR:
                    continue
                failed += 1  # the first message was refused (too big, no buffer...): skip it
                i += 1
            done += m
        return failed


class RingIO:
    """A ``TPACKET_V2`` receive ring mapped in front of a side area, for one packet socket.

    The kernel writes each frame into the next free slot of the ring (in the
    sender's context: no socket-buffer clone, queue and copy per frame on our
    side); ``recv(limit)`` finds the run of slots the kernel handed over with a
    few vectorised loads (status, length, MAC offset of each slot) and returns
    their offsets in ``buf``: the frames are processed and sent from the ring
    itself.  Their slots go back to the kernel at the next ``recv``, so the
    arrays stay valid until then (as ``MmsgIO``).  On a vnet socket the kernel
    puts the virtio_net_hdr right before the frame, as ``MmsgIO`` does.

    The ring's slots hold frames of up to ``frame_size - 44`` bytes.  A longer
    frame (a GRO/GSO super-frame) is truncated in its slot, marked
    ``TP_STATUS_COPY`` and queued whole on the socket (``PACKET_COPY_THRESH``):
    it is read with ``recvmsg`` into the *side area*, mapped right after the
    ring (one ``buf``: the batched datapath takes one buffer), where frames that
    need a VLAN tag back (or, without vnet, a checksum completed) are rebuilt
    too.  Returns ``(offsets, lengths, dropped)``: frames truncated without a
    copy are dropped and counted.
    """

    def __init__(self, sock: socket.socket, vnet: bool, mtu: int, frames: int = 4096, side: int = 64) -> None:
        self.sock = sock
        self.vnet = vnet
        fs = 2048
        while fs < mtu + 18 + 64:
            fs *= 2
        frames = max(64, min(frames, (16 << 20) // fs))
        block = max(fs, 1 << 16)
        self.fs, self.nr = fs, frames
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(SOL_PACKET, PACKET_COPY_THRESH, 1)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", block, fs * frames // block, fs, frames))
        ring = fs * frames
        self.side, self.side_base = side, ring
        total = ring + side * _SLOT
        total = (total + 0xFFFF) & ~0xFFFF
        libc = _libc()
        addr = libc.mmap(None, total, 3, 0x22, -1, 0)  # PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS: the range
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        r = libc.mmap(addr, ring, 3, 0x11, sock.fileno(), 0)  # MAP_SHARED|MAP_FIXED: the ring at its start
        if r != addr:
            err = ctypes.get_errno()
            libc.munmap(addr, total)
            raise OSError(err, "mmap of the packet ring")
        self.addr, self.total = addr, total
        self.mv = memoryview((ctypes.c_uint8 * total).from_address(addr)).cast("B")
        self.buf = None  # numpy views: made at the first recv() (an idle daemon never imports numpy)
        self.head = 0
        self.pending = None  # status word indexes of the slots to give back
        self.fixups = _FIXUPS if not vnet else TP_STATUS_VLAN_VALID

    def _arrays(self) -> None:
        import numpy as np

        ring = self.fs * self.nr
        self.buf = np.frombuffer(self.mv, dtype=np.uint8)
        self.u32 = self.buf[:ring].view(np.uint32)
        self.u16 = self.buf[:ring].view(np.uint16)
        self.slots = (np.arange(2 * self.nr, dtype=np.int64) % self.nr) * self.fs  # slot offsets from any head
        half = self.side // 2
        self.copy_io = MmsgIO(self.sock.fileno(), half, self.vnet,
                              buf=self.buf[self.side_base:self.side_base + half * _SLOT])

    def close(self) -> None:
        if self.addr:
            self.buf = self.u32 = self.u16 = None
            self.mv.release()
            _libc().munmap(self.addr, self.total)
            self.addr = 0

    def release(self) -> None:
        """Gives the slots of the last batch back to the kernel."""
        if self.pending is not None:
            self.u32[self.pending] = 0  # TP_STATUS_KERNEL
            self.pending = None

    def recv_list(self, limit: int, port: AfPacketPort) -> tuple[list, list]:
        """The per-frame path's read: up to ``limit`` frames as bytes (and their vnet headers or None).

        Slots go back to the kernel at once.
        """
        if self.pending is not None:
            self.release()
        mv, fs, nr, vnet = self.mv, self.fs, self.nr, self.vnet
        frames: list = []
        hdrs: list = []
        for _ in range(limit):
            s = self.head * fs
            status, tp_len, snap, mac = _T2.unpack_from(mv, s)
            if not status & TP_STATUS_USER:
                break
            hdr = None
            if mv[s + 42] == PACKET_OUTGOING:  # kernels without PACKET_IGNORE_OUTGOING
                port.rx_outgoing += 1
                if status & TP_STATUS_COPY:
                    self._read_copy(None)
                data = None
            elif status & TP_STATUS_COPY:
                got = self._read_copy(None, keep=True)
                data, aux, hdr = got if got is not None else (None, None, None)
                if data is not None and aux is not None and aux[0] & _FIXUPS:
                    data, hdr = port._fix(data, aux[0], aux[5], aux[6], hdr)
            elif tp_len != snap:
                data = None
            else:
                data = bytes(mv[s + mac:s + mac + snap])
                if vnet:
                    hdr = bytes(mv[s + mac - VNET_LEN:s + mac])
                if status & self.fixups:
                    tci, tpid = _T2V.unpack_from(mv, s + 24)
                    data, hdr = port._fix(data, status, tci, tpid, hdr)
            if data is None and mv[s + 42] != PACKET_OUTGOING:
                port.rx_truncated += 1
            _U32.pack_into(mv, s, 0)
            self.head = (self.head + 1) % nr
            if data is not None:
                if hdr is not None and hdr[1]:
                    port.rx_gso += 1
                frames.append(data)
                hdrs.append(None if hdr == ZERO_HDR else hdr)
        return frames, hdrs

    def recv(self, limit: int, port: AfPacketPort):
        """The batched read: (offsets, lengths) int64 arrays of up to ``limit`` frames in ``buf``."""
        import numpy as np

        if self.buf is None:
            self._arrays()
        self.release()
        so = self.slots[self.head:self.head + min(limit, self.nr)]
        w = so >> 2
        st = self.u32[w]
        user = (st & TP_STATUS_USER) != 0
        if not user[0]:
            return None, None
        if not user.all():
            k = int(np.argmin(user))
            so, w, st = so[:k], w[:k], st[:k]
        k = len(so)
        self.pending = w
        self.head = (self.head + k) % self.nr
        u32 = self.u32
        snap = u32[w + 2]
        offsets = so + self.u16[(so >> 1) + 6]
        lengths = snap.astype(np.int64)
        special = ((st & (TP_STATUS_COPY | self.fixups)) != 0) | (u32[w + 1] != snap) \
            | (self.buf[so + 42] == PACKET_OUTGOING)
        if special.any():
            offsets, lengths = self._special(port, np.flatnonzero(special), so, st, offsets, lengths)
        return offsets, lengths

    def _special(self, port, idx, so, st, offsets, lengths):
        """Frames that need more than the ring gives: whole copies read, VLAN tag back, drops.

        Whole copies (``TP_STATUS_COPY``) are read with one ``recvmmsg`` into the
        first half of the side area (they wait on the socket queue in ring
        order); frames rebuilt with a VLAN tag (or a completed checksum) go to
        the second half.  When a half is full, the batch stops before the frame
        that needs it (its slot stays with us for the next round).
        """
        import numpy as np

        buf = self.buf
        half = self.side // 2
        sts = st[idx]
        copy = (sts & TP_STATUS_COPY) != 0
        rebuild = ~copy & ((sts & self.fixups) != 0)
        cut = None
        if int(np.count_nonzero(copy)) > half:
            cut = int(idx[np.flatnonzero(copy)[half]])
        if int(np.count_nonzero(rebuild)) > half:
            c2 = int(idx[np.flatnonzero(rebuild)[half]])
            cut = c2 if cut is None else min(cut, c2)
        if cut is not None:  # give the frames from ``cut`` on back for the next round
            self.pending = self.pending[:cut]
            self.head = (self.head - (len(offsets) - cut)) % self.nr
            offsets, lengths = offsets[:cut], lengths[:cut]
            keep_idx = idx < cut
            idx, copy = idx[keep_idx], copy[keep_idx]
        cio = self.copy_io
        got = cio.recv(int(np.count_nonzero(copy))) if copy.any() else 0
        if cio.errors:
            port.rx_errors += cio.errors
            cio.errors = 0
        vnet = VNET_LEN if self.vnet else 0
        drop = []
        q = 0  # next whole copy
        j = half  # next rebuild slot
        for i in idx.tolist():
            s, o, n = int(so[i]), int(offsets[i]), int(lengths[i])
            status = int(st[i])
            if status & TP_STATUS_COPY:
                if q >= got:  # the copy is missing (socket error): drop
                    port.rx_truncated += 1
                    drop.append(i)
                    continue
                o2, n2 = int(cio.offsets[q]), int(cio._len[q]) - vnet
                c = cio.ctl32[q]
                aux_ok = cio._ctllen[q] >= _CMSG_HDR + _AUX.size and c[2] == SOL_PACKET and c[3] == PACKET_AUXDATA
                q += 1
                if buf[s + 42] == PACKET_OUTGOING:
                    port.rx_outgoing += 1
                    drop.append(i)
                    continue
                o2 += self.side_base
                if aux_ok and c[4] & (TP_STATUS_VLAN_VALID if vnet else _FIXUPS):
                    st2, _l, _sn, _m, _ne, tci, tpid = _AUX.unpack_from(cio.ctl[q - 1], _CMSG_HDR)
                    hdr = bytes(buf[o2 - VNET_LEN:o2]) if vnet else None
                    data, hdr = port._fix(bytes(buf[o2:o2 + n2]), st2, tci, tpid, hdr)
                    buf[o2:o2 + len(data)] = np.frombuffer(data, dtype=np.uint8)
                    if hdr is not None:
                        buf[o2 - VNET_LEN:o2] = np.frombuffer(hdr, dtype=np.uint8)
                    n2 = len(data)
                offsets[i], lengths[i] = o2, n2
                continue
            if buf[s + 42] == PACKET_OUTGOING:  # kernels without PACKET_IGNORE_OUTGOING
                port.rx_outgoing += 1
                drop.append(i)
                continue
            if int(self.u32[(s >> 2) + 1]) != n:  # truncated and no copy (socket queue full)
                port.rx_truncated += 1
                drop.append(i)
                continue
            side = self.side_base + j * _SLOT + _HEAD
            j += 1
            hdr = bytes(buf[o - VNET_LEN:o]) if vnet else None
            tci, tpid = int(self.u16[(s >> 1) + 12]), int(self.u16[(s >> 1) + 13])
            data, hdr = port._fix(bytes(buf[o:o + n]), status, tci, tpid, hdr)
            buf[side:side + len(data)] = np.frombuffer(data, dtype=np.uint8)
            if hdr is not None:
                buf[side - VNET_LEN:side] = np.frombuffer(hdr, dtype=np.uint8)
            offsets[i], lengths[i] = side, len(data)
        return self._keep(offsets, lengths, drop)

    @staticmethod
    def _keep(offsets, lengths, drop):
        if not drop:
            return offsets, lengths
        import numpy as np

        keep = np.ones(len(offsets), dtype=bool)
        keep[drop] = False
        return offsets[keep], lengths[keep]

    def _read_copy(self, side: int | None, keep: bool = False):
        """Reads the next whole frame queued on the socket (the copy of a ``TP_STATUS_COPY`` slot).

        With ``side``: into the side slot at ``side`` (its vnet header before
        it); returns (bytes, aux) or None.  With ``keep``: returns (bytes, aux,
        vnet header).  Neither: the frame is discarded.
        """
        vnet = VNET_LEN if self.vnet else 0
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX_FRAME + vnet, 64)
        except OSError:
            return None
        if side is None and not keep:
            return None
        aux = None
        for level, typ, a in anc:
            if level == SOL_PACKET and typ == PACKET_AUXDATA and len(a) >= _AUX.size:
                aux = _AUX.unpack_from(a)
        hdr = None
        if vnet:
            hdr, data = data[:VNET_LEN], data[VNET_LEN:]
            if side is not None:
                self.buf[side - VNET_LEN:side] = memoryview(hdr)
        return (data, aux, hdr) if keep else (data, aux)


def interface_exists(name: str) -> bool:
    """True when ``name`` is a network interface of this namespace."""
    if not name or len(name) > 15 or "/" in name:
        return False
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _ifreq_ptr(ifname: str, ptr: int) -> bytes:
    return struct.pack("16sP", ifname.encode(), ptr).ljust(40, b"\0")


def _ethtool(sock: socket.socket, ifname: str, cmd: int, value: int = 0) -> int:
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, value), 8)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, _ifreq_ptr(ifname, ctypes.addressof(buf)))
    return struct.unpack("II", buf.raw)[1]


def get_offloads(ifname: str) -> dict[str, bool | None]:
    """feature -> on/off (None: the driver does not say)."""
    out: dict[str, bool | None] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name, (get, _set) in ETHTOOL_FEATURES.items():
            try:
                out[name] = bool(_ethtool(s, ifname, get))
            except OSError:
                out[name] = None
    return out


def set_offloads(ifname: str, on: bool = False) -> dict[str, str]:
    """Sets every offload of ``ifname`` on or off; returns feature -> error for the ones refused."""
    errors: dict[str, str] = {}
    order = OFFLOAD_ORDER if not on else tuple(reversed(OFFLOAD_ORDER))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in order:
            try:
                _ethtool(s, ifname, ETHTOOL_FEATURES[name][1], 1 if on else 0)
            except OSError as e:
                errors[name] = e.strerror or str(e)
    return errors


def set_offload_profile(ifname: str, want: dict[str, bool]) -> dict[str, str]:
    """Sets the offloads named in ``want`` (in ``OFFLOAD_ORDER``, reversed for the ones turned on
    after those turned off); returns feature -> error for the ones refused."""
    errors: dict[str, str] = {}
    off = [f for f in OFFLOAD_ORDER if f in want and not want[f]]
    on = [f for f in reversed(OFFLOAD_ORDER) if want.get(f)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in off + on:
            try:
                _ethtool(s, ifname, ETHTOOL_FEATURES[name][1], 1 if want[name] else 0)
            except OSError as e:
                errors[name] = e.strerror or str(e)
    return errors


def get_mtu(ifname: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        r = fcntl.ioctl(s.fileno(), SIOCGIFMTU, struct.pack("16si", ifname.encode(), 0).ljust(40, b"\0"))
    return struct.unpack_from("i", r, 16)[0]


def complete_l4_csum(frame: bytes) -> bytes:
    """The frame with its TCP/UDP checksum computed in full (for partial-checksum frames)."""
    from ..packet.checksum import l4_csum4, l4_csum6

    off = 12
    et = int.from_bytes(frame[off:off + 2], "big")
    while et in (0x8100, 0x88A8) and len(frame) >= off + 6:
        off += 4
        et = int.from_bytes(frame[off:off + 2], "big")
    l3 = off + 2
    if et == 0x0800 and len(frame) >= l3 + 20:
        ihl = (frame[l3] & 0xF) * 4
        total = int.from_bytes(frame[l3 + 2:l3 + 4], "big")
        proto = frame[l3 + 9]
        l4, end = l3 + ihl, l3 + total
        src = int.from_bytes(frame[l3 + 12:l3 + 16], "big")
        dst = int.from_bytes(frame[l3 + 16:l3 + 20], "big")
        fn = l4_csum4
    elif et == 0x86DD and len(frame) >= l3 + 40:
        proto = frame[l3 + 6]
        l4, end = l3 + 40, l3 + 40 + int.from_bytes(frame[l3 + 4:l3 + 6], "big")
        src = int.from_bytes(frame[l3 + 8:l3 + 24], "big")
        dst = int.from_bytes(frame[l3 + 24:l3 + 40], "big")
        fn = l4_csum6
    else:
        return frame
    pos = {6: 16, 17: 6}.get(proto)
    if pos is None or end > len(frame) or end < l4 + pos + 2:
        return frame
    b = bytearray(frame)
    b[l4 + pos:l4 + pos + 2] = b"\0\0"
    c = fn(src, dst, proto, memoryview(b)[l4:end])
    if proto == 17 and c == 0:
        c = 0xFFFF
    b[l4 + pos:l4 + pos + 2] = c.to_bytes(2, "big")
    return bytes(b)


class AfPacketPort:
    """One interface as a switch port (see module docstring).

    Attributes:
        name: interface name; ifindex; mtu.
        rx, tx, rx_vlan, rx_csum_fixed, tx_errors, rx_outgoing, rx_errors: counters.
        offload_errors: feature -> reason for offloads the driver refused to turn off.
    """

    def __init__(self, ifname: str, *, disable_offloads: bool = True, rcvbuf: int = RCVBUF,
                 batch: int = 64, vnet: bool = False, ring: bool = False) -> None:
        self.name = ifname
        self.batch = batch
        self._mmsg: MmsgIO | None | bool = None
        self.ifindex = socket.if_nametoindex(ifname)
        self.mtu = get_mtu(ifname)
        self.rx = self.tx = self.rx_vlan = self.rx_csum_fixed = self.tx_errors = self.rx_outgoing = 0
        self.rx_errors = self.rx_gso = self.rx_dropped = self.rx_truncated = 0
        self.ring: RingIO | None = None
        self.ring_error = ""
        # Protocol 0: the socket receives nothing until bind(), so the ring is in place before the first frame.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.vnet = False
            if vnet:  # before the ring (the kernel refuses it after)
                try:
                    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
                    self.vnet = True
                except OSError:
                    pass
            s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            with contextlib.suppress(OSError):
                s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            if not disable_offloads:
                self.offload_errors = {}
            elif self.vnet:
                self.offload_errors = set_offload_profile(ifname, VNET_OFFLOADS)
            else:
                self.offload_errors = set_offloads(ifname, False)
            # The qdisc bypass drops a frame the device cannot take as it is (dev_direct_xmit: a GSO
            # frame on a device without TSO is segmented, then dropped): a vnet port without TSO
            # keeps the qdisc path, which segments.
            self.qdisc_bypass = not self.vnet or bool(get_offloads(ifname).get("tso"))
            if self.qdisc_bypass:
                with contextlib.suppress(OSError):
                    s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE: root ignores rmem_max
                try:
                    s.setsockopt(socket.SOL_SOCKET, force, rcvbuf)
                except OSError:
                    with contextlib.suppress(OSError):
                        s.setsockopt(socket.SOL_SOCKET, opt, rcvbuf)
            if ring:
                try:
                    self.ring = RingIO(s, self.vnet, self.mtu)
                except OSError as e:  # e.g. no memory for the ring: recvmmsg/recvmsg instead
                    self.ring_error = e.strerror or str(e)
            s.bind((ifname, ETH_P_ALL))
            mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            s.setblocking(False)
            t = self._tx_socket(ifname, rcvbuf)
        except OSError:
            if self.ring is not None:
                self.ring.close()
            s.close()
            raise
        self.sock = s
        self.tx_sock = t
        self.rx_hdrs: list = []  # vnet: the virtio_net_hdr of each frame of the last recv_batch
        self._recvmsg = s.recvmsg
        self._send = t.send
        self._sendmsg = t.sendmsg

    def _tx_socket(self, ifname: str, sndbuf: int) -> socket.socket:
        """The port's send-only socket: the receiving socket's vnet and qdisc settings, bound with
        protocol 0 (it receives nothing: no packet-type hook) and never registered in a selector.

        Why a second socket: the kernel frees each sent frame's skb (``sock_wfree``, when the
        receiver orphans it) and then calls ``sock_def_write_space``, which wakes the waiters
        of the *sending* socket's wait queue.  The receiving socket is in the loop's epoll set,
        so sending from it made every frame take the wait-queue and epoll locks for a wake-up
        nobody wants (64 B run, perf: ~5 % of the daemon's time).  A socket nobody waits on
        skips it (sys time 2.16 -> 1.98 us per frame).  Our receiving socket still ignores these
        frames: the qdisc bypass does not pass taps, and on the qdisc path
        ``PACKET_IGNORE_OUTGOING`` applies to every outgoing frame (a kernel without it shows them
        as ``PACKET_OUTGOING``: dropped and counted in ``rx_outgoing``).
        """
        t = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if self.vnet:
                t.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            if self.qdisc_bypass:
                with contextlib.suppress(OSError):
                    t.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            try:
                t.setsockopt(socket.SOL_SOCKET, 32, sndbuf)  # SO_SNDBUFFORCE: root ignores wmem_max
            except OSError:
                with contextlib.suppress(OSError):
                    t.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            t.bind((ifname, 0))
            t.setblocking(False)
        except OSError:
            t.close()
            raise
        return t

    def kernel_drops(self) -> int:
        """Frames the kernel dropped for this socket (receive queue full) since the bind."""
        with contextlib.suppress(OSError):
            self.rx_dropped += struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
        return self.rx_dropped

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_batch(self, limit: int = 64) -> list[bytes]:
        """Up to ``limit`` frames waiting on the socket (never blocks)."""
        if self.ring is not None:
            frames, self.rx_hdrs = self.ring.recv_list(limit, self)
            self.rx += len(frames)
            return frames
        frames = []
        recvmsg = self._recvmsg
        vnet = self.vnet
        hdrs = self.rx_hdrs = []
        for _ in range(limit):
            try:
                data, anc, _flags, addr = recvmsg(_MAX_FRAME + VNET_LEN if vnet else _MAX_FRAME, 64)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # a pending socket error (ENETDOWN...): reported once, then EAGAIN
                self.rx_errors += 1
                break
            if addr[2] == PACKET_OUTGOING:  # kernels without PACKET_IGNORE_OUTGOING
                self.rx_outgoing += 1
                continue
            hdr = None
            if vnet:
                hdr, data = data[:VNET_LEN], data[VNET_LEN:]
                if hdr == ZERO_HDR:
                    hdr = None
                elif hdr[1]:
                    self.rx_gso += 1
            for level, typ, aux in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(aux) >= _AUX.size:
                    status, _len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(aux)
                    if status & _FIXUPS:
                        data, hdr = self._fix(data, status, tci, tpid, hdr)
            frames.append(data)
            if vnet:
                hdrs.append(hdr)
        self.rx += len(frames)
        return frames

    def _fix(self, data: bytes, status: int, tci: int, tpid: int, hdr: bytes | None = None):
        """The wire frame from what the kernel handed over: VLAN tag back, checksum completed.

        Returns (frame, vnet header).  With a vnet header, a partial checksum
        stays partial (the header says where: ``csum_start`` moves with the tag).
        """
        if status & TP_STATUS_VLAN_VALID:
            if not status & TP_STATUS_VLAN_TPID_VALID:
                tpid = 0x8100
            data = data[:12] + struct.pack(">HH", tpid, tci) + data[12:]
            self.rx_vlan += 1
            if hdr is not None and hdr[0] & NEEDS_CSUM:
                f, g, hl, gs, cs, co = _VNET.unpack_from(hdr)
                hdr = _VNET.pack(f, g, hl + 4 if hl else 0, gs, cs + 4, co)
        if status & TP_STATUS_CSUMNOTREADY and (hdr is None or not hdr[0] & NEEDS_CSUM):
            data = complete_l4_csum(data)
            self.rx_csum_fixed += 1
        return data, hdr

    # ------------------------------------------------------------ batched I/O (recvmmsg/sendmmsg)
    def mmsg(self) -> MmsgIO | None:
        """The port's batched I/O (made at first use); None when recvmmsg/sendmmsg are unusable."""
        if self._mmsg is None:
            self._mmsg = MmsgIO(self.sock.fileno(), self.batch, self.vnet, rx=self.ring is None,
                                tx_fd=self.tx_sock.fileno()) \
                if _mmsg_calls() else False
        return self._mmsg or None

    def recv_frames(self, limit: int = 64):
        """Up to ``limit`` frames in one go, never blocks: (buf, addr, offsets, lengths, hdrs).

        From the ``RingIO`` when the port has one, else with one ``recvmmsg``
        (``MmsgIO``).  ``buf`` is a uint8 array at address ``addr`` (valid until
        the next call; rewriting frames in place is fine), ``offsets``/``lengths``
        int64 arrays.  Frames are fixed up exactly as ``recv_batch`` does.
        ``hdrs`` (vnet ports, else None): uint64 addresses of each frame's
        virtio_net_hdr (the 10 bytes before the frame), to send the frame with.
        A GRO super-frame (``DATA_VALID``, whole checksums) is marked
        ``NEEDS_CSUM`` here: it must leave with a partial checksum, which
        ``vnet.fix_hits`` / ``fix_out`` compute.  Needs ``mmsg()`` to be available.
        """
        import numpy as np

        ring = self.ring
        if ring is not None:
            offsets, lengths = ring.recv(limit, self)
            buf, addr = ring.buf, ring.addr
            if offsets is None:
                e = _empty()
                return buf, addr, e, e, None
        else:
            offsets, lengths = self._recv_mmsg(limit)
            io = self._mmsg
            buf, addr = io.buf, io.addr
        k = len(offsets)
        hdrs = None
        if self.vnet and k:
            hdrs = (addr - VNET_LEN) + offsets.astype(np.uint64)
            h = offsets - VNET_LEN
            gso = buf[h + 1] != 0
            if gso.any():
                self.rx_gso += int(np.count_nonzero(gso))
                # A super-frame made by GRO on our port comes with DATA_VALID and the first
                # segment's checksum: it goes out partial (vnet.fix_hits / fix_out compute it).
                conv = h[gso & ((buf[h] & NEEDS_CSUM) == 0)]
                if len(conv):
                    buf[conv] = NEEDS_CSUM
                    buf[conv + 6] = 34  # csum_start: right for the fast path's frames (untagged IPv4, IHL 5)
                    buf[conv + 7] = 0
                    buf[conv + 8] = np.where((buf[conv + 1] & 0x7F) == 5, 6, 16)  # csum_offset: UDP / TCP
                    buf[conv + 9] = 0
        self.rx += k
        return buf, addr, offsets, lengths, hdrs

    def _recv_mmsg(self, limit: int):
        import numpy as np

        io = self._mmsg
        k = io.recv(limit)
        if io.errors:
            self.rx_errors += io.errors
            io.errors = 0
        offsets = io.offsets[:k]
        lengths = io._len[:k].astype(np.int64)
        if not k:
            return offsets, lengths
        vnet = io.vnet
        if vnet:
            lengths -= VNET_LEN
        c = io.ctl32[:k]
        aux = (io._ctllen[:k] >= _CMSG_HDR + _AUX.size) & (c[:, 2] == SOL_PACKET) & (c[:, 3] == PACKET_AUXDATA)
        special = ((c[:, 4] & (TP_STATUS_VLAN_VALID if vnet else _FIXUPS)) != 0) & aux
        outgoing = io.names[:k, 10] == PACKET_OUTGOING
        if special.any() or outgoing.any():
            keep = []
            buf = io.buf
            for i in range(k):
                if outgoing[i]:  # kernels without PACKET_IGNORE_OUTGOING
                    self.rx_outgoing += 1
                    continue
                if special[i]:
                    o = int(offsets[i])
                    status, _len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(io.ctl[i], _CMSG_HDR)
                    hdr = bytes(buf[o - VNET_LEN:o]) if vnet else None
                    data, hdr = self._fix(bytes(buf[o:o + int(lengths[i])]), status, tci, tpid, hdr)
                    buf[o:o + len(data)] = np.frombuffer(data, dtype=np.uint8)
                    lengths[i] = len(data)
                    if hdr is not None:
                        buf[o - VNET_LEN:o] = np.frombuffer(hdr, dtype=np.uint8)
                keep.append(i)
            offsets, lengths = offsets[keep], lengths[keep]
        return offsets, lengths

    def vnet_hdr(self, buf, offset: int) -> bytes | None:
        """The virtio_net_hdr of the frame at ``offset`` of ``buf`` (None: no metadata or no vnet)."""
        if not self.vnet:
            return None
        h = buf[offset - VNET_LEN:offset].tobytes()
        return None if h == ZERO_HDR else h

    def send_frames(self, addr: int, offsets, lengths, hdrs=None) -> int:
        """Sends the slices ``[addr + offsets[i], + lengths[i])`` in order with ``sendmmsg``.

        ``hdrs``: addresses of their virtio_net_hdr (vnet ports; None: none).
        Returns how many the kernel refused (counted in ``tx_errors``, as ``send`` does).
        """
        io = self._mmsg or self.mmsg()
        failed = io.send(addr, offsets, lengths, hdrs)
        self.tx += len(offsets) - failed
        self.tx_errors += failed
        return failed

    def send(self, frame, hdr: bytes | None = None) -> bool:
        """Transmits one frame; False (counted in ``tx_errors``) when the kernel refuses it.

        ``hdr``: the virtio_net_hdr of a frame received on a vnet port (see
        ``vnet.fix_out``); ignored by a port without vnet.
        """
        try:
            if self.vnet:
                self._sendmsg((hdr or ZERO_HDR, frame))
            else:
                self._send(frame)
        except OSError:
            self.tx_errors += 1
            return False
        self.tx += 1
        return True

    def close(self) -> None:
        if self.ring is not None:
            self.ring.close()
        self.sock.close()
        self.tx_sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m ctswitch.io.afpacket offloads-off|offloads-on|show IFNAME...``"""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("offloads-off", "offloads-on", "show"):
        print("usage: python -m ctswitch.io.afpacket offloads-off|offloads-on|show IFNAME...", file=sys.stderr)
        return 2
    rc = 0
    for ifname in args[1:]:
        if not interface_exists(ifname):
            print(f"{ifname}: no such interface", file=sys.stderr)
            rc = 1
            continue
        if args[0] == "show":
            feats = get_offloads(ifname)
            print(ifname + ": " + " ".join(f"{k}={'on' if v else 'off' if v is not None else '?'}"
                                           for k, v in feats.items()))
            continue
        for feat, err in set_offloads(ifname, args[0] == "offloads-on").items():
            print(f"{ifname}: {feat}: {err}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
