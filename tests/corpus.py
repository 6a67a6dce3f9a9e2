"""Shared test corpora. The v0 malformed-input corpus has one copy, in the chaos suite's module (a tool
cannot import from ``tests/``); the decode unit tests and the end-to-end test take it from here."""

from bridge.tools.chaos.corpus import CORPUS, jpeg_claiming, png, wav

__all__ = ["CORPUS", "jpeg_claiming", "png", "wav"]
