"""The label sets Hume's v0 streaming models score, complete and spelled as Hume spells them.

The tuples are in Hume's documented (alphabetical) order; the emulator never emits them in this order (see
:mod:`bridge.tools.emulator.predictions`), so a client that reads scores by position, not by name, breaks.
"""

from __future__ import annotations

from typing import Final

EMOTIONS: Final[tuple[str, ...]] = (
    "Admiration",
    "Adoration",
    "Aesthetic Appreciation",
    "Amusement",
    "Anger",
    "Anxiety",
    "Awe",
    "Awkwardness",
    "Boredom",
    "Calmness",
    "Concentration",
    "Confusion",
    "Contemplation",
    "Contempt",
    "Contentment",
    "Craving",
    "Desire",
    "Determination",
    "Disappointment",
    "Disgust",
    "Distress",
    "Doubt",
    "Ecstasy",
    "Embarrassment",
    "Empathic Pain",
    "Entrancement",
    "Envy",
    "Excitement",
    "Fear",
    "Guilt",
    "Horror",
    "Interest",
    "Joy",
    "Love",
    "Nostalgia",
    "Pain",
    "Pride",
    "Realization",
    "Relief",
    "Romance",
    "Sadness",
    "Satisfaction",
    "Shame",
    "Surprise (negative)",
    "Surprise (positive)",
    "Sympathy",
    "Tiredness",
    "Triumph",
)
"""The 48 emotions of the face, prosody, burst and facemesh models."""

LANGUAGE_EMOTIONS: Final[tuple[str, ...]] = tuple(
    sorted((*EMOTIONS, "Annoyance", "Disapproval", "Enthusiasm", "Gratitude", "Sarcasm"))
)
"""The 53 emotions of the language model: the 48 plus five of its own."""

FACS: Final[tuple[str, ...]] = (
    "AU1 Inner Brow Raise",
    "AU2 Outer Brow Raise",
    "AU4 Brow Lowerer",
    "AU5 Upper Lid Raise",
    "AU6 Cheek Raise",
    "AU7 Lids Tight",
    "AU9 Nose Wrinkle",
    "AU10 Upper Lip Raiser",
    "AU11 Nasolabial Furrow Deepener",
    "AU12 Lip Corner Puller",
    "AU14 Dimpler",
    "AU15 Lip Corner Depressor",
    "AU16 Lower Lip Depress",
    "AU17 Chin Raiser",
    "AU18 Lip Pucker",
    "AU19 Tongue Show",
    "AU20 Lip Stretch",
    "AU22 Lip Funneler",
    "AU23 Lip Tightener",
    "AU24 Lip Presser",
    "AU25 Lips Part",
    "AU26 Jaw Drop",
    "AU27 Mouth Stretch",
    "AU28 Lips Suck",
    "AU32 Bite",
    "AU34 Puff",
    "AU37 Lip Wipe",
    "AU38 Nostril Dilate",
    "AU43 Eye Closure",
    "AU53 Head Up",
    "AU54 Head Down",
    "Hand over Mouth",
    "Hand over Eyes",
    "Hand over Forehead",
    "Hand over Face",
    "Hand touching Face / Head",
)
"""The 36 facial action units (and hand gestures) of ``models.face.facs``."""

DESCRIPTIONS: Final[tuple[str, ...]] = (
    "Beaming",
    "Biting lip",
    "Cheering",
    "Cringe",
    "Cry",
    "Eyes closed",
    "Face in hands",
    "Frown",
    "Gasp",
    "Glare",
    "Glaring",
    "Grimace",
    "Grin",
    "Jaw drop",
    "Laugh",
    "Licking lip",
    "Pout",
    "Scowl",
    "Smile",
    "Smirk",
    "Snarl",
    "Squint",
    "Sulking",
    "Tongue out",
    "Wide-eyed",
    "Wince",
    "Wrinkled nose",
)
"""The 27 face descriptions of ``models.face.descriptions``."""

SENTIMENT: Final[tuple[str, ...]] = tuple(str(n) for n in range(1, 10))
"""Sentiment of ``models.language.sentiment``: names "1" (most negative) to "9" (most positive)."""

TOXICITY: Final[tuple[str, ...]] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
"""Toxicity of ``models.language.toxicity``."""
