"""Hume v1: media conversion, the realtime protocol, span ledger and pacing (pure parts)."""
