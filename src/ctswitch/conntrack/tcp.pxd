# Augmenting declarations for tcp.py: the functions taking a connection become cpdef with the
# connection typed, so every ``c.end0`` is a struct member read.  The other arguments stay
# Python objects.  nonecheck: a None connection raises AttributeError as in Python (instead of
# reading a field of None); a non-TcpConn raises TypeError at the call.
# The window functions' flag, state and sequence locals are C integers: 32-bit unsigned for
# the sequence space (the values the parser and this module produce), so their arithmetic is
# the kernel's modulo 2**32, which is what the Python code's explicit masks compute.
cimport cython
from ctswitch.conntrack.conn cimport TcpConn
from ctswitch.packet.headers cimport Packet
from ctswitch.conntrack.timeouts cimport Timeouts

cdef unsigned int _FINF, _SYNF, _RSTF, _ACKF, _M32, _MAXACKWIN
cdef unsigned int _F_WSCALE, _F_SACK, _F_LIBERAL, _F_UNACKED, _F_MAXACK
cdef unsigned int _SS, _SR

cpdef seg_end(Packet pkt)

cpdef init(TcpConn conn, Packet pkt, loose)

@cython.locals(c=TcpConn, flags=cython.uint, seq=cython.uint, ack=cython.uint, win=cython.uint,
               plen=cython.uint, syn=cython.uint, end=cython.uint, state=cython.uint,
               s_end=cython.uint, s_maxend=cython.uint, s_maxwin=cython.uint, s_maxack=cython.uint,
               s_scale=cython.uint, s_flags=cython.uint, r_end=cython.uint, r_maxend=cython.uint,
               r_maxwin=cython.uint, r_flags=cython.uint, maxackwin=cython.uint, swin=cython.uint,
               o_send=cython.uint, o_smaxwin=cython.uint, o_smaxack=cython.uint, o_sflags=cython.uint,
               o_rmaxend=cython.uint, o_rmaxwin=cython.uint, o_rflags=cython.uint)
cdef _in_window(TcpConn conn, d, index, Packet pkt, be_liberal)

cpdef in_window(TcpConn conn, d, index, Packet pkt, be_liberal)

# No error check after each call: an exact int compared with two int
# constants cannot raise.
cdef bint _u32(x) noexcept

cdef bint _u8(x) noexcept

cdef bint _u5(x) noexcept

cdef bint _fits(TcpConn c, Packet pkt) except -1

@cython.locals(s_end=cython.uint, s_maxend=cython.uint, s_maxwin=cython.uint, s_scale=cython.uint,
               s_flags=cython.uint, r_end=cython.uint, r_maxend=cython.uint, r_maxwin=cython.uint,
               r_scale=cython.uint, r_flags=cython.uint, init=cython.bint, accept=cython.bint,
               ws=cython.int)
cdef bint _window_setup(TcpConn c, d, Packet pkt, unsigned int flags, unsigned int end,
                        unsigned int win, unsigned int ack) except -1

cpdef _set_side(TcpConn c, d, end, maxend, maxwin, scale, flags)

@cython.locals(c=TcpConn)
cpdef packet(TcpConn conn, d, Packet pkt, Timeouts t, now)

@cython.locals(info=TcpConn)
cpdef _handle_invalid(TcpConn conn, d, index, Timeouts t, now)
