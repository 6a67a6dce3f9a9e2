"""Upstream adapters: one subpackage per Hume API behind the seam the core uses."""
