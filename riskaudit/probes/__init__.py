"""Probe kinds: each turns a probe definition (data in probes/) and a model into per-item records."""
