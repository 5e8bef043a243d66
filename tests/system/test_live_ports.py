"""AF_PACKET port I/O on a veth pair: every receive path gives the wire frames, in order.

A namespace of its own (``ctsw-pt-XXXX``) holds a veth pair ``a``/``b``; a
script inside it binds ``AfPacketPort("a")`` (receive ring or ``recvmmsg``,
with or without ``PACKET_VNET_HDR``) and sends, from a raw socket on ``b``, a
sequence of frames that take the rare paths: an 802.1Q-tagged frame (the kernel
strips the tag; the port puts it back), frames longer than a ring slot (the ring
keeps a truncated copy and queues the whole frame: ``TP_STATUS_COPY``), a tagged
long frame, and plain small ones.  Both the batched read (``recv_frames``) and
the per-frame read (``recv_batch``) must return exactly the frames sent, in
order (also 40 long then 40 tagged frames: more than a round of the ring takes); then frames go back out
through ``send_frames`` and arrive intact on ``b``, as does one ``send``; both go
through the port's send-only socket, which receives nothing (and the port does
not read its own frames back).  The namespace is deleted even on failure.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap

import pytest

from ctswitch.control import lab

pytestmark = pytest.mark.system

SCRIPT = r"""
import json, socket, sys, time
import numpy as np
from ctswitch.io.afpacket import AfPacketPort

ring, vnet = sys.argv[1] == "1", sys.argv[2] == "1"
port = AfPacketPort("a", vnet=vnet, ring=ring, batch=256)
assert (port.ring is not None) == ring and port.vnet == vnet, (port.ring, port.ring_error, port.vnet)
port.mmsg()
for dev in ("a", "b"):   # after the bind: the ring's slots were sized for 1500
    import subprocess
    subprocess.run(["ip", "link", "set", "dev", dev, "mtu", "9000"], check=True)
peer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
peer.bind(("b", 0))
peer_rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
peer_rx.bind(("b", 3))
peer_rx.setsockopt(263, 8, 1)  # PACKET_AUXDATA
peer_rx.setsockopt(263, 23, 1)  # PACKET_IGNORE_OUTGOING
peer_rx.settimeout(2)

def eth(n, seq, tag=None):
    hdr = bytes.fromhex("020000000001020000000002")
    if tag is not None:
        hdr += bytes.fromhex("8100") + tag.to_bytes(2, "big")
    hdr += bytes.fromhex("88b5")           # local experimental ethertype: no stack wants it
    body = seq.to_bytes(4, "big") + bytes((seq * 7 + i) & 0xFF for i in range(n - len(hdr) - 4))
    return hdr + body

def sequence(base):
    return [eth(60, base), eth(64, base + 1, tag=5), eth(5000, base + 2), eth(60, base + 3),
            eth(7000, base + 4, tag=7), eth(1514, base + 5), eth(60, base + 6)]

def ours(f):   # the kernel may send a frame of its own on a new link (IPv6 neighbour discovery...)
    return f[12:14] == b"\x88\xb5" or f[16:18] == b"\x88\xb5"

def drain(read, count=7):
    got, deadline = [], time.monotonic() + 5
    while len(got) < count and time.monotonic() < deadline:
        got += [f for f in read() if ours(f)]
        if not got:
            time.sleep(0.01)
    return got

res = {}
sent = sequence(100)
for f in sent:
    peer.send(f)
def batched():
    buf, addr, offs, lens, hdrs = port.recv_frames(256)
    res["hdrs_ok"] = (hdrs is not None) == vnet and (hdrs is None or len(hdrs) == len(offs))
    out = [bytes(buf[o:o + n]) for o, n in zip(offs.tolist(), lens.tolist())]
    if out:   # send them back out of "a" from where they are, before the next read
        res["send_failed"] = port.send_frames(addr, offs, lens, hdrs)
    return out
got = drain(batched)
res["batched"] = [g == s for g, s in zip(got, sent)] + [len(got) == len(sent)]
echo = []
while True:
    try:
        data, anc, _f, addr = peer_rx.recvmsg(65536, 64)
    except socket.timeout:
        break
    for level, typ, aux in anc:   # put the tag back, as the port does
        if level == 263 and typ == 8:
            import struct
            st, _l, _s, _m, _n, tci, tpid = struct.unpack_from("=IIIHHHH", aux)
            if st & 16:
                data = data[:12] + struct.pack(">HH", tpid or 0x8100, tci) + data[12:]
    if ours(data):
        echo.append(data)
    if len(echo) == len(sent):
        break
res["echo"] = [e == s for e, s in zip(echo, sent)] + [len(echo) == len(sent)]
sent2 = sequence(200)
for f in sent2:
    peer.send(f)
got2 = drain(lambda: port.recv_batch(256))
res["per_frame"] = [g == s for g, s in zip(got2, sent2)] + [len(got2) == len(sent2)]
res["hdrs"] = len(port.rx_hdrs) if vnet else None
# more long and tagged frames than the ring's side area takes in one round: the rest waits, in order
sent3 = [eth(3000, 300 + i) for i in range(40)] + [eth(64, 340 + i, tag=9) for i in range(40)]
for f in sent3:
    peer.send(f)
got3 = drain(lambda: [bytes(b[o:o + n]) for b, _a, offs, lens, _h in [port.recv_frames(256)]
                      for o, n in zip(offs.tolist(), lens.tolist())], len(sent3))
res["many"] = [g == s for g, s in zip(got3, sent3)] + [len(got3) == len(sent3)]
# frames go out through the port's send-only socket (per-frame send too), which never receives
res["tx_sock"] = port.tx_sock.fileno() != port.sock.fileno()
one = eth(60, 400)
res["sent_one"] = port.send(one)
back = []
while True:
    try:
        data = peer_rx.recv(65536)
    except socket.timeout:
        break
    if ours(data):
        back.append(data)
    if data == one:
        break
res["one_back"] = back[-1:] == [one]
try:
    port.tx_sock.recv(65536)
    res["tx_sock_rx"] = True
except BlockingIOError:
    res["tx_sock_rx"] = False
res["counters"] = {"rx": port.rx, "rx_vlan": port.rx_vlan, "rx_truncated": port.rx_truncated,
                   "tx_errors": port.tx_errors, "drops": port.kernel_drops()}
port.close()
print(json.dumps(res))
"""


@pytest.fixture
def veth_ns():
    why = lab.available()
    if why:
        pytest.skip(f"system test needs root and ip netns: {why}")
    ns = f"ctsw-pt-{secrets.token_hex(2)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
        for cmd in (["link", "add", "name", "a", "type", "veth", "peer", "name", "b"], ["link", "set", "dev", "a", "up"],
                    ["link", "set", "dev", "b", "up"]):
            subprocess.run(["ip", "-n", ns, *cmd], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.parametrize("ring,vnet", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_port_receive_paths_give_wire_frames_in_order(veth_ns, ring, vnet):
    r = subprocess.run(["ip", "netns", "exec", veth_ns, sys.executable, "-c", textwrap.dedent(SCRIPT),
                        str(ring), str(vnet)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert all(res["batched"]), json.dumps(res)
    assert res["hdrs_ok"], res
    assert res["send_failed"] == 0, res
    assert all(res["echo"]), res
    assert all(res["per_frame"]), res
    assert all(res["many"]), res
    assert res["tx_sock"] and res["sent_one"] and res["one_back"], res
    assert res["tx_sock_rx"] is False, res  # the send-only socket has no packet-type hook
    if vnet:
        assert res["hdrs"] == 7, res
    c = res["counters"]
    assert c["rx"] >= 94 and c["rx_vlan"] == 44 and c["rx_truncated"] == 0 and c["drops"] == 0, c
