"""The questioner stage's reward function: validity (strict / lenient) and the vote prompt."""

from __future__ import annotations

import pytest
from PIL import Image

from visplay.config import load_evolve_config
from visplay.engines.sampler import HFSampler
from visplay.stages.questioner import VoteReward

FULL = "<type>numerical</type><question>How many red circles?</question><answer>2</answer>"
QUESTION_ONLY = "<question>How many blue squares?</question>"


def _config(tmp_path, *overrides):
    (tmp_path / "images").mkdir(exist_ok=True)
    base = {"preset": "tiny", "model": {"path": str(tmp_path)}, "data": {"images": str(tmp_path / "images")}}
    return load_evolve_config(None, ["questioner.votes=3", "questioner.vote_sampling.max_tokens=6", *overrides], base=base)


@pytest.mark.parametrize("validity", ["strict", "lenient"])
def test_official_reward_of_a_question_only_reply(tmp_path, tiny_loaded, validity):
    cfg = _config(tmp_path, "reward.variant=official", f"reward.validity={validity}")
    reward = VoteReward(HFSampler(tiny_loaded, progress=False), cfg, seed=0)
    image = Image.new("RGB", (112, 112), (245, 245, 245))
    completions = [FULL, QUESTION_ONLY, FULL, "no tags at all"]
    out = reward(completions, {"image": [image] * 4}, [0, 0, 0, 0])
    # A reply without any question is invalid under both parsers: -1 - penalty.
    assert out[3]["validity"] == 0.0 and out[3]["total"] == pytest.approx(-1.0 - out[3]["diversity"])
    assert out[0]["validity"] == 1.0 and out[0]["total"] > -1.0
    if validity == "strict":  # the authors: only the full type/question/answer triple is a question
        assert out[1]["validity"] == 0.0 and out[1]["total"] == pytest.approx(-1.0 - out[1]["diversity"])
    else:
        assert out[1]["validity"] == 1.0 and out[1]["total"] > -1.0


def test_authors_vote_prompt_reaches_the_voter(tmp_path, tiny_loaded):
    seen = []

    class Recording(HFSampler):
        def sample(self, requests, **kwargs):
            seen.extend(requests)
            seen.append(kwargs)
            return super().sample(requests, **kwargs)

    cfg = _config(tmp_path, "questioner.vote_prompt=authors", "questioner.vote_sampling.top_k=40")
    reward = VoteReward(Recording(tiny_loaded, progress=False), cfg, seed=0)
    image = Image.new("RGB", (112, 112), (245, 245, 245))
    reward([FULL, FULL], {"image": [image] * 2}, [0, 0])
    messages = seen[0].messages
    assert messages[0]["role"] == "system" and "must only output your final answer" in messages[0]["content"]
    assert "The question type is: numerical." in messages[1]["content"][1]["text"]
    assert seen[-1]["top_k"] == 40 and seen[-1]["repetition_penalty"] == 1.0
