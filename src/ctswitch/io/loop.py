"""Live event loop: AF_PACKET ports, the control socket and the timers in one selector.

Theory of operation
-------------------
``LiveLoop(switch, clock)`` owns one ``selectors.DefaultSelector``.  Every
registered key's ``data`` is a callback ``fn(mask)``: packet sockets and
control sockets (``control.server``) share the loop, so nothing needs a
thread or a lock and the switch is only ever touched from here.

``sync_ports()`` binds every bridge port whose name is an existing Linux
interface (``io.afpacket``) and closes sockets of ports that went away; ports
without an interface stay virtual (what is output there is counted, then
dropped).  The daemon calls it after every changing command.

``run_once(timeout)``:

1. drains every packet socket in rounds of ``BATCH`` frames (round-robin, so a
   busy port cannot starve the others), reading the clock once per round;
2. when every socket is empty, waits in ``select`` for at most the time left
   to the next timer (``TICK_MS`` = 100 ms at most), serving control clients;
3. calls ``Datapath.tick(now)`` at least every ``TICK_MS``.

How a round is handled (``docs/live.md`` has the measurements):

======================  ==================================================
state                   one port's round
======================  ==================================================
batch path off          frames as bytes (from the port's receive ring,
(or < ``batch_min``)    else ``recvmsg`` per frame), ``Datapath.receive``
                        per frame, outputs sent at once with ``send``
batch path on           the port's receive ring (or one ``recvmmsg`` into
(``mmsg``)              its buffer) gives offsets/lengths into one buffer;
                        a round of >= ``batch_min`` frames goes through
                        ``dp.batch.receive_batch``: offloaded connections
                        are rewritten in place by the Numba kernel, misses
                        go to ``Datapath.receive`` in their turn; then, in
                        arrival order, each run of hits between two misses
                        is sent with one ``sendmmsg`` per output port
                        straight from the buffer, each miss's outputs with
                        ``send``
batch path on, no       frames joined into one buffer, same batch call,
recvmmsg in libc        sends one by one
======================  ==================================================

With ``PACKET_VNET_HDR`` ports (``vnet``, the default) every frame keeps its
virtio_net_hdr from receive to send: super-frames cross whole and partial
checksums stay partial.  Rewriting addresses changes the pseudo-header a
partial checksum covers: after the kernel, ``vnet.fix_hits`` recomputes it
for the hits; each slow-path output goes through ``vnet.fix_out``.

The batch path is turned on (``Datapath.enable_batch``) at the first round
of at least ``batch_min`` frames, so an idle daemon never loads numba; it
stays off when numba is missing (the kernel as plain Python is slower than
the per-frame path).  Its hits are credited lazily: timer ticks, saves and
views call ``Datapath.sync_counters`` (the daemon before every command).
An exception costs one frame on the per-frame path and one round on the
batch path (counted in ``drops['internal error']`` and
``stats['internal_errors']``, logged ten times at most), never the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
from collections import Counter

from .afpacket import AfPacketPort, interface_exists, mmsg_available
from .vnet import NEEDS_CSUM, VNET_LEN, fix_hits, fix_out

log = logging.getLogger("ctswitch.daemon")

TICK_MS = 100
# Frames per port and round.  The per-round cost (a dozen numpy calls, the kernel call, one sendmmsg
# per output port) is amortised over the round: in the 64 B run the daemon's user time was
# 0.27 us/frame with rounds of 256 and 0.14 with 1024 (rounds then average ~700 frames); 64 measured
# ~10 % fewer 64 B pps than 256.  Control clients are served every 8 rounds (< 20 ms at full load).
BATCH = 1024
RING = True  # TPACKET_V2 receive ring (io.afpacket.RingIO) instead of recvmmsg
VNET = True  # PACKET_VNET_HDR on the ports (see docs/live.md "GSO super-frames")
BATCH_MIN = 2  # a round of 1 frame takes the per-frame path (faster for one; see docs/live.md)
OFPP_LOCAL = 0xFFFE
VIRTUAL_TYPES = frozenset({"internal", "patch", "dummy", "vxlan", "geneve", "gre"})


class LiveLoop:
    """See module docstring."""

    def __init__(self, switch, clock, *, disable_offloads: bool = True, batch: bool = True,
                 batch_min: int = BATCH_MIN, mmsg: bool = True, vnet: bool = VNET, ring: bool = RING) -> None:
        self.switch = switch
        self.ring = ring and mmsg  # TPACKET_V2 receive ring on the ports (needs the batched I/O)
        self.vnet = vnet  # PACKET_VNET_HDR on the ports: GSO super-frames and partial checksums pass
        self.batch = batch
        self.batch_min = max(1, batch_min)
        self.mmsg = mmsg  # recvmmsg/sendmmsg once the batch path is on (when libc has them)
        self._in_ports: dict[int, object] = {}  # ofport -> int64 array of BATCH copies of it
        self.clock = clock
        self.sel = selectors.DefaultSelector()
        self.ports: dict[str, AfPacketPort] = {}      # ifname -> socket
        self.binding: dict[str, tuple[object, int]] = {}  # ifname -> (bridge, ofport)
        self.disable_offloads = disable_offloads
        self.stats: Counter = Counter()
        self.errors: dict[str, str] = {}              # ifname -> why it could not be bound
        self.stopping = False
        self.last_tick = -TICK_MS

    # ------------------------------------------------------------------ ports
    def wanted(self) -> dict[str, tuple[object, int]]:
        """ifname -> (bridge, ofport) for every bridge port backed by a Linux interface."""
        out = {}
        for br in self.switch.bridges.values():
            for p in br.ports.values():
                if p.ofport == OFPP_LOCAL or p.type in VIRTUAL_TYPES:
                    continue
                if interface_exists(p.name):
                    out[p.name] = (br, p.ofport)
        return out

    def sync_ports(self) -> list[str]:
        """Binds/unbinds sockets to match the config; returns log lines for what changed."""
        want = self.wanted()
        log = []
        for name in [n for n in self.ports if n not in want]:
            port = self.ports.pop(name)
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(port.sock)
            port.close()
            log.append(f"port {name}: closed")
        for name in want:
            if name in self.ports:
                continue
            try:
                port = AfPacketPort(name, disable_offloads=self.disable_offloads, batch=BATCH, vnet=self.vnet,
                                    ring=self.ring)
            except OSError as e:
                if self.errors.get(name) != str(e):
                    log.append(f"port {name}: cannot bind: {e.strerror or e}")
                self.errors[name] = str(e)
                continue
            self.errors.pop(name, None)
            self.ports[name] = port
            self.sel.register(port.sock, selectors.EVENT_READ, lambda m: None)
            extra = f" (offloads left on: {', '.join(sorted(port.offload_errors))})" if port.offload_errors else ""
            vn = (", vnet hdr" if port.vnet else "") + (", rx ring" if port.ring is not None else "")
            if port.ring_error:
                vn += f", no rx ring: {port.ring_error}"
            log.append(f"port {name}: bound (ifindex {port.ifindex}, mtu {port.mtu}{vn}){extra}")
        self.binding = {n: want[n] for n in self.ports}
        return log

    # ------------------------------------------------------------------ loop
    def _drain(self) -> int:
        """One round over every port; returns the frames handled."""
        sw = self.switch
        dp = sw.datapath
        if self.mmsg and dp is not None and dp.batch is not None:
            return self._drain_mmsg(dp)
        total = 0
        for name, port in self.ports.items():
            frames = port.recv_batch(BATCH)
            if not frames:
                continue
            n = len(frames)
            total += n
            br, ofport = self.binding[name]
            now = self.clock.now()
            sw.now = now
            hdrs = port.rx_hdrs if port.vnet else None
            if n >= self.batch_min and self.batch and dp is not None and self._batch_ready(dp):
                self._receive_batch(dp, name, br, ofport, frames, now, hdrs)
            else:
                self._receive_frames(dp, name, br, ofport, frames, now, hdrs)
        return total

    def _batch_ready(self, dp) -> bool:
        """True when ``dp.batch`` is on (turned on at the first big batch: numba loads then)."""
        if dp.batch is not None:
            return True
        if self.stats["batch_unavailable"]:
            return False
        try:
            from ..datapath.kernels import HAVE_NUMBA, numba
            jit = HAVE_NUMBA and not numba.config.DISABLE_JIT  # the kernel as plain Python is slower
        except ImportError:
            jit = False
        if jit and dp.enable_batch():
            self.mmsg = self.mmsg and mmsg_available()
            rx = "rx ring" if any(p.ring is not None for p in self.ports.values()) else "recvmmsg"
            log.info("batched fast path on (numba kernel, batches of >= %d frames, %s)", self.batch_min,
                     f"{rx}/sendmmsg" if self.mmsg else "recvmsg/send")
            if any(p.vnet for p in self.ports.values()):
                import numpy as np

                # compiled (or loaded from numba's cache) now, not at the first partial checksum
                fix_hits(np.zeros(64, dtype=np.uint8), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
            return True
        self.stats["batch_unavailable"] = 1
        log.info("batched fast path unavailable (numpy/numba missing): per-frame path only")
        return False

    def _drain_mmsg(self, dp) -> int:
        """``_drain`` once the batch path is on: one ``recvmmsg`` per port and round."""
        sw = self.switch
        total = 0
        for name, port in self.ports.items():
            if port._mmsg is None:
                port.mmsg()
            buf, addr, offsets, lengths, hdrs = port.recv_frames(BATCH)
            n = len(offsets)
            if not n:
                continue
            total += n
            br, ofport = self.binding[name]
            now = self.clock.now()
            sw.now = now
            if n < self.batch_min:
                frames = [bytes(buf[o:o + ln]) for o, ln in zip(offsets.tolist(), lengths.tolist())]
                vh = None if hdrs is None else [port.vnet_hdr(buf, o) for o in offsets.tolist()]
                self._receive_frames(dp, name, br, ofport, frames, now, vh)
                continue
            try:
                self._port_batch(dp, name, br, ofport, port, buf, addr, offsets, lengths, hdrs, now)
            except Exception as e:  # a bug must cost one batch, never the daemon
                self._internal_error(dp, name, n, int(lengths.sum()), e)
        return total

    def _port_batch(self, dp, name: str, br, ofport: int, port, buf, addr: int, offsets, lengths, hdrs,
                    now: int) -> None:
        """One port's round (``buf`` at ``addr``) through the batched datapath, outputs sent in order.

        ``hdrs`` (vnet ports): addresses of the frames' virtio_net_hdr, sent
        with the hits; partial checksums of hits are recomputed after the
        kernel's rewrite (``vnet.fix_hits``), slow-path outputs go through
        ``vnet.fix_out``.
        """
        import numpy as np

        n = len(offsets)
        in_ports = self._in_ports.get(ofport)
        if in_ports is None:
            in_ports = self._in_ports[ofport] = np.full(BATCH, ofport, dtype=np.int64)
        dp.tick(now)  # the batch must not span a timer tick (no-op until the next one is due)
        out_ports, slow = dp.batch.receive_batch(br, buf, offsets, lengths, in_ports[:n], now)
        self.stats["batches"] += 1
        self.stats["batch_frames"] += n
        if hdrs is not None:
            partial = (buf[offsets - VNET_LEN] & NEEDS_CSUM) != 0
            if partial.any():
                sel = np.flatnonzero(partial & (out_ports >= 0))
                if len(sel):
                    fix_hits(buf, offsets, sel)
        outs_of: dict = {}
        if not slow:
            self._send_hits(br, out_ports, offsets, lengths, addr, outs_of, hdrs)
            return
        lo = 0
        for j in sorted(slow):
            if j > lo:
                self._send_hits(br, out_ports[lo:j], offsets[lo:j], lengths[lo:j], addr, outs_of,
                                None if hdrs is None else hdrs[lo:j])
            lo = j + 1
            self._send_outs(br, slow[j], outs_of, None if hdrs is None else port.vnet_hdr(buf, int(offsets[j])))
        if lo < n:
            self._send_hits(br, out_ports[lo:], offsets[lo:], lengths[lo:], addr, outs_of,
                            None if hdrs is None else hdrs[lo:])

    def _send_hits(self, br, out_ports, offsets, lengths, addr: int, outs_of: dict, hdrs=None) -> None:
        """Sends fast-path hits (slices of the buffer at ``addr``), one ``sendmmsg`` per output port."""
        u = int(out_ports[0])
        if len(out_ports) == 1 or bool((out_ports == u).all()):
            groups = ((u, offsets, lengths, hdrs),)
        else:
            import numpy as np

            groups = []
            for u in np.unique(out_ports).tolist():
                sel = out_ports == u
                groups.append((u, offsets[sel], lengths[sel], None if hdrs is None else hdrs[sel]))
        for u, offs, lens, hs in groups:
            if u < 0:
                continue
            pd = outs_of.get(u)
            if pd is None:
                pd = outs_of[u] = self._out(br, u)
            p, dst = pd
            if dst is None:
                self.stats["tx_virtual"] += len(offs)
                continue
            failed = dst.send_frames(addr, offs, lens, hs)
            if failed:
                p.tx_dropped += failed

    def _send_outs(self, br, outs, outs_of: dict, hdr: bytes | None = None) -> None:
        """Sends the (ofport, frame) outputs of one ``Datapath.receive`` (``hdr``: the input's vnet header)."""
        for out_no, data in outs:
            pd = outs_of.get(out_no)
            if pd is None:
                pd = outs_of[out_no] = self._out(br, out_no)
            p, dst = pd
            if dst is not None:
                h = None
                if hdr is not None:
                    h, data = fix_out(data, hdr)
                if not dst.send(data, h):
                    p.tx_dropped += 1
            else:
                self.stats["tx_virtual"] += 1

    def _out(self, br, out_no: int):
        """(bridge port, socket or None) of output port ``out_no`` (bridge port None: unknown)."""
        p = br.by_no.get(out_no)
        return p, (self.ports.get(p.name) if p is not None else None)

    def _internal_error(self, dp, name: str, frames: int, nbytes: int, e: Exception) -> None:
        dp.drops["internal error"] += frames
        self.stats["internal_errors"] += 1
        if self.stats["internal_errors"] <= 10:
            what = f"a {nbytes}-byte frame" if frames == 1 else f"a batch of {frames} frames"
            log.exception("port %s: internal error on %s (dropped): %s", name, what, e)

    def _receive_frames(self, dp, name: str, br, ofport: int, frames: list, now: int, hdrs=None) -> None:
        """``Datapath.receive`` frame by frame (small batches, or no batch path); ``hdrs``: vnet headers."""
        outs_of: dict = {}
        for i, frame in enumerate(frames):
            try:
                outs = dp.receive(br, ofport, frame, now)
            except Exception as e:  # a bug must cost one packet, never the daemon
                self._internal_error(dp, name, 1, len(frame), e)
                continue
            if outs:
                self._send_outs(br, outs, outs_of, None if hdrs is None else hdrs[i])

    def _receive_batch(self, dp, name: str, br, ofport: int, frames: list, now: int, hdrs=None) -> None:
        """The whole round of one port through ``BatchFastPath.receive_batch``.

        Hits are rewritten in place in one buffer and sent from it; misses went
        through ``Datapath.receive`` in their turn; everything is sent in
        arrival order.  An exception costs this batch only.
        """
        import numpy as np

        n = len(frames)
        lens = list(map(len, frames))
        data = bytearray(b"".join(frames))
        buf = np.frombuffer(data, dtype=np.uint8)
        lengths = np.array(lens, dtype=np.int64)
        offsets = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        in_ports = np.full(n, ofport, dtype=np.int64)
        try:
            dp.tick(now)  # the batch must not span a timer tick (no-op until the next one is due)
            out_ports, slow = dp.batch.receive_batch(br, buf, offsets, lengths, in_ports, now)
        except Exception as e:  # a bug must cost one batch, never the daemon
            self._internal_error(dp, name, n, len(data), e)
            return
        self.stats["batches"] += 1
        self.stats["batch_frames"] += n
        mv = memoryview(data)
        outs_of = {}
        o = 0
        for i, (out_no, ln) in enumerate(zip(out_ports.tolist(), lens)):
            h = None if hdrs is None else hdrs[i]
            if slow and i in slow:
                self._send_outs(br, slow[i], outs_of, h)
            elif out_no >= 0:
                self._send_outs(br, ((out_no, mv[o:o + ln]),), outs_of, h)
            o += ln

    def tick(self) -> int:
        now = self.clock.now()
        self.switch.now = now
        if now - self.last_tick >= TICK_MS:
            self.last_tick = now
            if self.switch.datapath is not None:
                self.switch.datapath.tick(now)
        return now

    def run_once(self, timeout_ms: int = TICK_MS) -> None:
        rounds = 0
        while self.ports and not self.stopping:
            n = self._drain()
            self.stats["rx"] += n
            rounds += 1
            if n == 0:
                break
            if rounds % 8 == 0:
                self.tick()
                # serve control clients now and then even under full load
                for key, mask in self.sel.select(0):
                    key.data(mask)
        now = self.tick()
        wait = max(0, min(timeout_ms, TICK_MS - (now - self.last_tick)))
        for key, mask in self.sel.select(wait / 1000.0):
            key.data(mask)

    def run(self) -> None:
        while not self.stopping:
            self.run_once()

    def close(self) -> None:
        for port in self.ports.values():
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(port.sock)
            port.close()
        self.ports.clear()
        self.sel.close()

    def port_stats(self) -> dict[str, dict[str, int]]:
        return {n: {"rx": p.rx, "tx": p.tx, "tx_errors": p.tx_errors, "rx_errors": p.rx_errors, "rx_vlan": p.rx_vlan,
                    "rx_csum_fixed": p.rx_csum_fixed, "rx_gso": p.rx_gso, "rx_dropped": p.kernel_drops(),
                    "rx_truncated": p.rx_truncated}
                for n, p in self.ports.items()}
