"""The pure core: decode → order and settle per stream → track offsets, with flow control, the outage
machine and the publish policy beside them. No ``await``, no clock reads, no I/O: the shell passes
``now`` in and carries out what the core asks for. docs/ARCHITECTURE.md draws it."""
