"""The augmenting .pxd files (compiled core, ctswitch/_native.py) declare exactly the fields their
classes have: a slot missing from a ``cdef class`` would make the compiled class refuse that
attribute (AttributeError) while the Python one accepts it, and a field the class does not have
would hide a typo.  Slotted classes are checked against their ``__slots__``; the others (Tracker)
against every ``self.<name> = ...`` their methods write."""

import ast
import glob
import importlib
import os
import re

import pytest

from ctswitch import _native

_CLASS = re.compile(r"^cdef class (\w+)(?:\((\w+)\))?:\n((?:[ \t]+.*\n|\n)*)", re.M)
# (``public object`` fields, TcpConn's 32-bit ``public unsigned int`` ones (conn.pxd) and the port
# and rule counters' ``public unsigned long long`` ones (bridge.pxd, rule.pxd))
_FIELDS = re.compile(r"^\s+cdef public (?:object|unsigned int|unsigned long long) (.+)$", re.M)


def _pxd_classes():
    for path in sorted(glob.glob(os.path.join(_native.PACKAGE_DIR, "**", "*.pxd"), recursive=True)):
        rel = os.path.relpath(path, _native.PACKAGE_DIR)[:-4].replace(os.sep, ".")
        with open(path) as f:
            text = f.read()
        for m in _CLASS.finditer(text + "\n"):
            fields = [x.strip() for line in _FIELDS.findall(m.group(3)) for x in line.split(",")]
            yield rel, m.group(1), fields


CLASSES = list(_pxd_classes())
# The base class of each declared subclass (MirrorTable(FastTable)): it holds the fields the
# subclass's methods store too.
_BASES = {(m, c): b for path in sorted(glob.glob(os.path.join(_native.PACKAGE_DIR, "**", "*.pxd"), recursive=True))
          for m in [os.path.relpath(path, _native.PACKAGE_DIR)[:-4].replace(os.sep, ".")]
          for c, b in re.findall(r"^cdef class (\w+)\((\w+)\):", open(path).read(), re.M)}


def _self_stores(module: str, cls: str) -> set[str]:
    with open(_native.source_path(module)) as f:
        tree = ast.parse(f.read())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    out = set()
    for n in ast.walk(node):
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(
            n, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            for e in ast.walk(t):
                if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
                    out.add(e.attr)
    return out


def test_there_are_declarations_to_check() -> None:
    assert {(m, c) for m, c, _ in CLASSES} >= {("conntrack.conn", "Conn"), ("conntrack.conn", "TcpConn"),
                                               ("packet.headers", "Packet"), ("conntrack.tracker", "Tracker"),
                                               ("ofproto.xlate", "XlateContext"), ("ofproto.rule", "Rule"),
                                               ("ofproto.bridge", "Port"), ("ofproto.bridge", "OFBridge")}
    assert all(m in _native.MODULES for m, _, _ in CLASSES)


@pytest.mark.parametrize("module,cls,fields", CLASSES, ids=[f"{m}.{c}" for m, c, _ in CLASSES])
def test_pxd_fields_are_the_class_fields(module: str, cls: str, fields: list[str]) -> None:
    assert len(fields) == len(set(fields)), "a field declared twice"
    klass = getattr(importlib.import_module("ctswitch." + module), cls)
    slots = klass.__dict__.get("__slots__")
    if slots is not None:
        assert sorted(fields) == sorted(slots)
    else:
        stores = _self_stores(module, cls)
        base = _BASES.get((module, cls))
        if base is not None:  # (its fields are the base's: declared there, checked there)
            stores -= _self_stores(module, base)
        assert sorted(fields) == sorted(stores)
