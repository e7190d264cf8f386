"""VisPlay: self-evolving vision-language models from unlabeled images.

One base VLM is split into an image-conditioned Questioner and a multimodal Reasoner; both are trained
with GRPO, rewarded only through the Reasoner's own majority vote. See README.md and docs/.
"""

__version__ = "0.1.0"
