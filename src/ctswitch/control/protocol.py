"""Control-socket protocol: JSON lines between ``ctswitch`` and its daemon.

Theory of operation
-------------------
One request and one reply per line, UTF-8 JSON objects terminated by ``\\n``:

* request ``{"tool": str, "argv": [str, ...], "stdin": str|null, "cwd": str|null}``
* reply   ``{"out": str, "err": str, "code": int}``

Everything here is pure: encoders return bytes, decoders take one line and
return a dict or raise ``ProtocolError`` with a one-line reason (the server
turns it into an error reply; it never kills the daemon).  ``LineBuffer``
frames a byte stream into lines and refuses lines longer than ``MAX_LINE``
(the peer gets an error reply and is disconnected: an oversized line cannot
be resynchronised cheaply).
"""

from __future__ import annotations

import json

MAX_LINE = 8 * 1024 * 1024  # bytes: a whole add-flows file fits, a runaway client does not
MAX_ARGS = 4096

# key -> (accepted types, required)
REQUEST_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "tool": ((str,), True),
    "argv": ((list,), True),
    "stdin": ((str, type(None)), False),
    "cwd": ((str, type(None)), False),
}
REPLY_FIELDS: dict[str, tuple[type, ...]] = {"out": (str,), "err": (str,), "code": (int,)}


class ProtocolError(ValueError):
    """A line that is not a valid request or reply (message: one line, no traceback)."""


def _dump(obj: dict) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def encode_request(tool: str, argv: list[str], stdin: str | None = None, cwd: str | None = None) -> bytes:
    """One request line; raises ProtocolError when it would exceed ``MAX_LINE``."""
    data = _dump({"tool": tool, "argv": list(argv), "stdin": stdin, "cwd": cwd})
    if len(data) > MAX_LINE:
        raise ProtocolError(f"request too large ({len(data)} bytes, limit {MAX_LINE})")
    return data


def _load(line: bytes | str) -> dict:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"line too long ({len(line)} bytes, limit {MAX_LINE})")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"malformed JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("expected a JSON object")
    return obj


def decode_request(line: bytes | str) -> dict:
    """A validated request dict (all four keys present) from one line."""
    obj = _load(line)
    for key, (types, required) in REQUEST_FIELDS.items():
        if key not in obj:
            if required:
                raise ProtocolError(f"missing field '{key}'")
            obj[key] = None
        elif not isinstance(obj[key], types):
            raise ProtocolError(f"field '{key}' has the wrong type")
    unknown = sorted(set(obj) - set(REQUEST_FIELDS))
    if unknown:
        raise ProtocolError(f"unknown field '{unknown[0]}'")
    if not obj["tool"]:
        raise ProtocolError("empty tool name")
    if len(obj["argv"]) > MAX_ARGS or not all(isinstance(a, str) for a in obj["argv"]):
        raise ProtocolError("argv must be a list of strings")
    return obj


def encode_reply(out: str = "", err: str = "", code: int = 0) -> bytes:
    """One reply line (a reply is never refused: the daemon made it)."""
    return _dump({"out": out, "err": err, "code": int(code)})


def error_reply(message: str, code: int = 1) -> bytes:
    """The reply to a request the daemon could not read."""
    return encode_reply("", f"ctswitch: {message}\n", code)


def decode_reply(line: bytes | str) -> dict:
    """A validated reply dict from one line."""
    obj = _load(line)
    for key, types in REPLY_FIELDS.items():
        if not isinstance(obj.get(key), types) or isinstance(obj.get(key), bool):
            raise ProtocolError(f"reply field '{key}' missing or of the wrong type")
    return obj


class LineBuffer:
    """Splits a byte stream into lines of at most ``limit`` bytes.

    ``feed(data)`` returns the complete lines (without ``\\n``); ``overflow`` becomes
    True when a line grows past the limit (the buffered bytes are discarded).
    """

    __slots__ = ("buf", "limit", "overflow")

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.buf = bytearray()
        self.limit = limit
        self.overflow = False

    def feed(self, data: bytes) -> list[bytes]:
        if self.overflow:
            return []
        self.buf += data
        lines = []
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i < 0:
                break
            if i - start > self.limit:
                self.overflow = True
                self.buf.clear()
                return lines
            lines.append(bytes(self.buf[start:i]))
            start = i + 1
        del self.buf[:start]
        if len(self.buf) > self.limit:
            self.overflow = True
            self.buf.clear()
        return lines
