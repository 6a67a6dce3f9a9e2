"""The pure core: decode → route per stream → track offsets. No ``await``, no clock reads, no I/O:
the shell passes ``now`` in and carries out what the core asks for."""
