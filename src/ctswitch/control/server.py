"""Control server: the daemon's unix socket, non-blocking, in the daemon's selector.

Theory of operation
-------------------
``ControlServer(path, handler, selector)`` binds a unix stream socket (mode
0600: only root talks to the daemon), and registers it in the daemon's one
selector.  Every selector key's ``data`` is a callback ``fn(mask)``: the event
loop (``io.loop``) calls it for control sockets and packet sockets alike.

Per client: a ``LineBuffer`` for input and a bytearray of pending output.
Each complete line is decoded (``protocol.decode_request``) and handed to
``handler(request) -> reply bytes``; a bad line gets ``protocol.error_reply``.
An oversized line gets an error reply and the connection is closed after it
is flushed.  Replies are written as far as the socket takes them; the rest
waits for EVENT_WRITE, so a client that does not read blocks nobody.  A client
whose pending output passes ``MAX_PENDING`` is dropped.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
from collections.abc import Callable

from . import protocol

MAX_PENDING = 64 * 1024 * 1024
MAX_CLIENTS = 64


class _Client:
    __slots__ = ("sock", "inbuf", "outbuf", "closing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = protocol.LineBuffer()
        self.outbuf = bytearray()
        self.closing = False


class ControlServer:
    """See module docstring."""

    def __init__(self, path: str, handler: Callable[[dict], bytes], selector: selectors.BaseSelector) -> None:
        self.path = path
        self.handler = handler
        self.sel = selector
        self.clients: dict[int, _Client] = {}
        self.errors = 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.sock.listen(socket.SOMAXCONN)
        self.sock.setblocking(False)
        self.sel.register(self.sock, selectors.EVENT_READ, self._accept)

    # ------------------------------------------------------------------ events
    def _accept(self, mask: int) -> None:
        for _ in range(64):
            try:
                s, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self.clients) >= MAX_CLIENTS:
                with contextlib.suppress(OSError):
                    s.send(protocol.error_reply("too many clients"))
                s.close()
                continue
            s.setblocking(False)
            c = _Client(s)
            self.clients[s.fileno()] = c
            self.sel.register(s, selectors.EVENT_READ, lambda m, c=c: self._event(c, m))

    def _event(self, c: _Client, mask: int) -> None:
        if mask & selectors.EVENT_READ and not c.closing:
            self._read(c)
        if c.sock.fileno() >= 0 and c.outbuf:
            self._flush(c)

    def _read(self, c: _Client) -> None:
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(c)
            return
        if not data:
            c.closing = True
            if not c.outbuf:
                self._close(c)
            return
        for line in c.inbuf.feed(data):
            if not line.strip():
                continue
            try:
                req = protocol.decode_request(line)
            except protocol.ProtocolError as e:
                self.errors += 1
                c.outbuf += protocol.error_reply(f"bad request: {e}")
                continue
            c.outbuf += self.handler(req)
        if c.inbuf.overflow:
            self.errors += 1
            c.outbuf += protocol.error_reply(f"bad request: line longer than {protocol.MAX_LINE} bytes")
            c.closing = True

    def _flush(self, c: _Client) -> None:
        try:
            n = c.sock.send(c.outbuf)
            del c.outbuf[:n]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(c)
            return
        if len(c.outbuf) > MAX_PENDING:
            self._close(c)
            return
        if not c.outbuf and c.closing:
            self._close(c)
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
        with contextlib.suppress(KeyError, ValueError):
            if self.sel.get_key(c.sock).events != want:
                self.sel.modify(c.sock, want, self.sel.get_key(c.sock).data)

    def _close(self, c: _Client) -> None:
        fd = c.sock.fileno()
        if fd >= 0:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(c.sock)
            self.clients.pop(fd, None)
            c.sock.close()

    def close(self) -> None:
        """Closes every client and the listening socket, and removes the socket file."""
        for c in list(self.clients.values()):
            self._close(c)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(self.sock)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
