"""Bytes <-> header fields. Pure; no I/O."""
