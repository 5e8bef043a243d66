"""The training run of the compiled core's profile-guided build (``scripts/build_native.py``).

``build_native.py`` compiles the modules instrumented (``gcc -fprofile-generate``), runs this
script with them loaded, and compiles them again with the counts it recorded
(``-fprofile-use``): the C compiler then lays out and inlines each module's code for the branches
this run took.  What it runs is the vendor SNAT scenario (example 2) as ctswitch's users run it:

* ``ctswitch run`` of ``examples/vendor-example2.sh`` (commands, flow syntax, the store);
* ``ctswitch gen`` + ``ctswitch replay`` of TCP traffic of the OVS oracle's shape (handshake,
  data both ways, FIN close) through the batch fast path, then of a mix of TCP (FIN and RST
  closes), UDP, ICMP and ARP;
* the listings (``conntrack -L``, ``dump-flows``, ``dpctl/dump-conntrack``, offload stats);
* frames one at a time through ``Datapath.receive`` of a switch without the batch table:
  new connections (handshake, offload insert) and established packets with offload off.

Its sizes and seeds are not the benchmarks' (bench/), only the same kinds of traffic.  A command
that fails stops the run with a non-zero exit (the build then compiles without a profile).

    python scripts/pgo_train.py      # (from the repository's root; build_native.py runs it)
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]


def _ctswitch(*argv: str) -> str:
    from ctswitch.cli.main import main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(list(argv))
    if code:
        raise SystemExit(f"pgo training: ctswitch {' '.join(argv)} exited {code}: {out.getvalue()[-300:]}")
    return out.getvalue()


def _cli(d: str) -> None:
    os.environ["CTSWITCH_DB"] = os.path.join(d, "train.db")
    _ctswitch("run", os.path.join(ROOT, "examples", "vendor-example2.sh"))
    perf = os.path.join(d, "perf")
    _ctswitch("gen", "--perf", "--packets", "120000", "--conns", "6000", "--size", "64", "--snat", "1.1.1.16", perf)
    _ctswitch("replay", "ctBr", "--in", f"pf0hpf={perf}/pf0hpf.pcap", "--in", f"p0={perf}/p0.pcap", "-q")
    mix = os.path.join(d, "mix")
    _ctswitch("gen", "--preset", "vendor2", "--tcp", "300", "--data", "6", "--udp", "200", "--icmp", "50", mix)
    _ctswitch("replay", "ctBr", "--in", f"pf0hpf={mix}/pf0hpf.pcap", "--in", f"p0={mix}/p0.pcap",
              "--out-dir", os.path.join(d, "out"), "-q")
    rst = os.path.join(d, "rst")
    _ctswitch("gen", "--preset", "vendor2", "--tcp", "200", "--close", "rst", "--start-ns", str(10**12), rst)
    _ctswitch("replay", "ctBr", "--in", f"pf0hpf={rst}/pf0hpf.pcap", "--in", f"p0={rst}/p0.pcap", "-q")
    _ctswitch("conntrack", "-L")
    _ctswitch("ovs-ofctl", "dump-flows", "ctBr")
    _ctswitch("ovs-appctl", "dpctl/dump-conntrack")


def _per_frame() -> None:
    # bench_slowpath's loops (under the replay's GC policy), at other sizes
    from bench.bench_slowpath import _established, _new_conns

    setup, run, _state = _new_conns(3000, syn_only=False, with_data=True)
    setup()
    run()
    _sw, run = _established(2000, 30000)
    run()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ctswitch-pgo-") as d:
        _cli(d)
    _per_frame()
    return 0


if __name__ == "__main__":
    sys.exit(main())
