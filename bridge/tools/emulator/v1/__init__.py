"""Hume Expression Measurement v1 in the emulator: realtime audio and video sessions, uploads and runs.

The pure parts (:mod:`.audio`, :mod:`.video`, :mod:`.scores`, :mod:`.runs`, :mod:`.uploads`) hold every rule;
:mod:`.server` is the aiohttp shell that serves them on the emulator's port next to v0. Nothing here imports
the bridge's media or protocol code: the limits live in :mod:`.limits`, the names in :mod:`.vocabulary`.
"""
