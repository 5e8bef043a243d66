# Augmenting declarations for tcp.py: the functions taking a connection become cpdef with the
# connection typed, so every ``c.end0`` is a struct member read.  The other arguments stay
# Python objects.  nonecheck: a None connection raises AttributeError as in Python (instead of
# reading a field of None); a non-TcpConn raises TypeError at the call.
cimport cython
from ctswitch.conntrack.conn cimport TcpConn
from ctswitch.packet.headers cimport Packet
from ctswitch.conntrack.timeouts cimport Timeouts

cpdef seg_end(Packet pkt)

cpdef init(TcpConn conn, Packet pkt, loose)

@cython.locals(c=TcpConn)
cpdef in_window(TcpConn conn, d, index, Packet pkt, be_liberal)

cpdef _window_setup(TcpConn c, d, Packet pkt, flags, end, win, ack)

cpdef _set_side(TcpConn c, d, end, maxend, maxwin, scale, flags)

@cython.locals(c=TcpConn)
cpdef packet(TcpConn conn, d, Packet pkt, Timeouts t, now)

@cython.locals(info=TcpConn)
cpdef _handle_invalid(TcpConn conn, d, index, Timeouts t, now)
