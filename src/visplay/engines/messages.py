"""Chat messages' image parts: VisPlay's messages mark where each image goes with a ``{"type": "image"}`` part.

Every check that a request's images match its messages counts the parts here, so the samplers, the
OpenAI translation and the benchmarks agree on what an image part is.
"""

from __future__ import annotations

from typing import Any


def is_image_part(part: Any) -> bool:
    """Whether one content part of a chat message stands for an image.

    >>> is_image_part({"type": "image"}), is_image_part({"type": "text", "text": "Q?"}), is_image_part("x")
    (True, False, False)
    """
    return isinstance(part, dict) and part.get("type") == "image"


def count_image_parts(messages: list[dict]) -> int:
    """The number of image parts over all messages (string contents hold none).

    >>> count_image_parts([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]},
    ...                    {"role": "assistant", "content": "A"}])
    1
    """
    return sum(1 for message in messages if isinstance(message.get("content"), list)
               for part in message["content"] if is_image_part(part))
