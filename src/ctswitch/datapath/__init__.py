"""Orchestration of packets through the emulated host (pure)."""
