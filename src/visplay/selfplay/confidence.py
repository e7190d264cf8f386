"""Vote confidence corrected for the answer space (a named extension; the paper uses the raw c).

The paper's c is the share of votes in the largest cluster. Its meaning depends on how many answers were
possible: on a yes/no question a reasoner that guesses at random still reaches c >= 1/2, and c = 5/9 or 6/9
(the only values a 9-vote yes/no question can take inside the paper's band 0.25-0.75) is close to chance,
while the same c on a count is a real majority. ``chance-corrected`` rescales c so that chance agreement is 0:
``(c - 1/k) / (1 - 1/k)``, floored at 0, with k = 2 when the silver answer is yes/no; other answers keep c
(their answer space is open). Used by ``curation.confidence`` (the band) and ``reward.confidence`` (the
questioner's uncertainty reward), both ``raw`` (the paper) by default.
"""

from __future__ import annotations

from visplay.selfplay.answers import answer_key

MODES = ("raw", "chance-corrected")


def chance_corrected(confidence: float, answer: str | None) -> float:
    """The confidence above chance for the answer's space.

    >>> round(chance_corrected(5 / 9, "yes"), 3), round(chance_corrected(7 / 9, "No"), 3), chance_corrected(0.4, "no")
    (0.111, 0.556, 0.0)
    >>> chance_corrected(5 / 9, "3") == 5 / 9, chance_corrected(1.0, "yes")
    (True, 1.0)
    """
    key = answer_key(answer) if answer is not None else None
    if key is None or not key.startswith("y:"):
        return confidence
    chance = 0.5
    return max(0.0, (confidence - chance) / (1.0 - chance))


def used_confidence(confidence: float, answer: str | None, mode: str) -> float:
    """``confidence`` as the band or the reward sees it under ``mode`` (raw or chance-corrected)."""
    if mode == "raw":
        return confidence
    if mode == "chance-corrected":
        return chance_corrected(confidence, answer)
    raise ValueError(f"confidence mode must be one of {MODES}, got {mode!r}")
