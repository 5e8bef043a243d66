"""JSON-able encoding of matches and action lists, for the state store.

Actions are frozen dataclasses of ``flow.actions``; each encodes as a dict
``{"t": ClassName, field: value...}`` (nested records and tuples likewise),
so the store never pickles code objects.  Big ints (IPv6, labels) stay ints.
"""

from __future__ import annotations

import dataclasses

from . import actions as A
from .key import Match

_CLASSES = {c.__name__: c for c in (
    A.Subfield, A.Output, A.Resubmit, A.GotoTable, A.SetField, A.Load, A.Move, A.DecTtl,
    A.CtClear, A.Nat, A.Ct, A.Controller, A.Note)}


def encode(obj):
    """Encodes an action record (or list/tuple of them) into JSON-able data."""
    if dataclasses.is_dataclass(obj):
        d = {"t": type(obj).__name__}
        for f in dataclasses.fields(obj):
            d[f.name] = encode(getattr(obj, f.name))
        return d
    if isinstance(obj, (list, tuple)):
        return [encode(x) for x in obj]
    if isinstance(obj, bytes):
        return {"bytes": obj.hex()}
    return obj


def decode(data, *, as_tuple: bool = False):
    """Inverse of ``encode``.  Raises ValueError on data it does not recognise."""
    if isinstance(data, dict):
        if "bytes" in data and len(data) == 1:
            return bytes.fromhex(data["bytes"])
        cls = _CLASSES.get(data.get("t"))
        if cls is None:
            raise ValueError(f"unknown action record {data.get('t')!r}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = decode(data[f.name], as_tuple=True)
        return cls(**kwargs)
    if isinstance(data, list):
        items = [decode(x, as_tuple=True) for x in data]
        return tuple(items) if as_tuple else items
    return data


def encode_match(m: Match) -> list:
    return [list(m.values), list(m.mask)]


def decode_match(data) -> Match:
    values, mask = data
    return Match(tuple(values), tuple(mask))
