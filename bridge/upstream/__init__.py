"""The upstream side: each Hume API behind one adapter interface (:mod:`bridge.upstream.adapter`)."""
