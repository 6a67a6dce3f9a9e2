"""Hume v0 streaming (retired June 2026): a shared pool of sockets, one reply per request.

``prepare`` shapes records (v0's limits, models and headers), ``protocol`` is the sans-I/O frame codec
and reply verdicts, ``pool`` the reconnecting sessions, ``adapter`` the seam the core drives."""
