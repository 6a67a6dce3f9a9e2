"""The names the emulator's v1 measurements use, extendable while it runs.

Hume's v1 vocabularies are large (415 speech expressions, 190 voice attributes, 48 face expressions, 27 face
descriptions) and grow over time; its clients must never depend on names. The emulator starts from smaller,
documented sets (the v0 emotion and description names, lowercased, and a list of voice attributes of its
own) and :meth:`Vocabulary.add` appends names at run time (``emu.vocabulary.add(...)`` or ``POST
/vocabulary`` on the admin endpoint), so a test can prove that a client passes unknown names through.
A name's score depends only on the measured media and the name itself, so adding names never changes the
scores of the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from bridge.tools.emulator.labels import DESCRIPTIONS, EMOTIONS, LANGUAGE_EMOTIONS


class VocabularyKind(StrEnum):
    AUDIO_EXPRESSIONS = "audio_expressions"
    VOICE_ATTRIBUTES = "voice_attributes"
    FACE_EXPRESSIONS = "face_expressions"
    FACE_DESCRIPTIONS = "face_descriptions"


VOICE_ATTRIBUTES: Final[tuple[str, ...]] = (
    "breathy",
    "bright",
    "calm",
    "clear",
    "creaky",
    "deep",
    "expressive",
    "fast",
    "gentle",
    "high-pitched",
    "loud",
    "low-pitched",
    "monotone",
    "nasal",
    "quiet",
    "raspy",
    "resonant",
    "shaky",
    "slow",
    "soft",
    "steady",
    "strained",
    "tense",
    "warm",
)

DEFAULTS: Final[Mapping[VocabularyKind, tuple[str, ...]]] = {
    VocabularyKind.AUDIO_EXPRESSIONS: tuple(n.lower() for n in LANGUAGE_EMOTIONS),
    VocabularyKind.VOICE_ATTRIBUTES: VOICE_ATTRIBUTES,
    VocabularyKind.FACE_EXPRESSIONS: tuple(n.lower() for n in EMOTIONS),
    VocabularyKind.FACE_DESCRIPTIONS: tuple(n.lower() for n in DESCRIPTIONS),
}


class VocabularyError(ValueError):
    """A change to the vocabulary that names an unknown kind or a bad name; lists every problem."""


class Vocabulary:
    """The four name lists in force; every list starts with :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._names: dict[VocabularyKind, tuple[str, ...]] = dict(DEFAULTS)

    def names(self, kind: VocabularyKind) -> tuple[str, ...]:
        return self._names[kind]

    def add(self, changes: Mapping[str, Iterable[str]]) -> None:
        """Append names (lowercase, non-empty, at most 100 characters) to the named lists; names already
        there are ignored. Validates everything first and changes nothing on a problem."""
        problems: list[str] = []
        clean: dict[VocabularyKind, list[str]] = {}
        for key, names in changes.items():
            try:
                kind = VocabularyKind(key)
            except ValueError:
                problems.append(
                    f"{key}: unknown vocabulary (one of {', '.join(k.value for k in VocabularyKind)})"
                )
                continue
            if isinstance(names, str) or not isinstance(names, Iterable):
                problems.append(f"{key}: must be a list of names")
                continue
            for name in names:
                if not isinstance(name, str) or not name or len(name) > 100 or name != name.lower():
                    problems.append(f"{key}: {name!r} is not a lowercase name of 1-100 characters")
                else:
                    clean.setdefault(kind, []).append(name)
        if problems:
            raise VocabularyError("; ".join(problems))
        for kind, added in clean.items():
            known = self._names[kind]
            fresh = [n for n in dict.fromkeys(added) if n not in known]
            self._names[kind] = known + tuple(fresh)

    def to_dict(self) -> dict[str, list[str]]:
        return {kind.value: list(names) for kind, names in self._names.items()}
