"""ctswitch: Open vSwitch connection tracking with BlueField-style hardware offload.

The core packages (packet, flow, ofproto, conntrack, offload, datapath) are pure:
they take ``now`` (milliseconds of switch time) as an argument and do no I/O.
Adapters (io, daemon, cli) live at the edge.
"""

__version__ = "0.1.0"

from . import _native

_native.install()  # the compiled core, when built and current (ctswitch/_native.py)
