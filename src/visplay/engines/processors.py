"""Processors for Qwen-VL family models that work without torchvision.

transformers builds a Qwen-VL processor from an image processor, a tokenizer AND a video processor; the
video processor needs torchvision, which must never be installed on CPU machines (its PyPI wheels are CUDA
builds and break every image processor). ``AutoProcessor.from_pretrained`` then silently returns only the
tokenizer. These image-only subclasses take just (image_processor, tokenizer, chat_template), so the
processor is always built explicitly and images always reach the model.
"""

from __future__ import annotations

from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor

try:  # Qwen3-VL arrived in transformers 4.57.
    from transformers import Qwen3VLProcessor
except ImportError:  # pragma: no cover
    Qwen3VLProcessor = None


def _image_only(base: type) -> type:
    class ImageOnly(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            # The parent __init__ reads video token ids from the tokenizer; give it no video processor.
            self.video_processor = None
            base.__init__(self, image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

        def __init_subclass__(cls, **kwargs):  # pragma: no cover - not subclassed further
            super().__init_subclass__(**kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"ImageOnly{base.__name__}"
    return ImageOnly


ImageOnlyQwen2VLProcessor = _image_only(Qwen2VLProcessor)
ImageOnlyQwen2_5_VLProcessor = _image_only(Qwen2_5_VLProcessor)
ImageOnlyQwen3VLProcessor = _image_only(Qwen3VLProcessor) if Qwen3VLProcessor is not None else None

# model_type -> (the class name written into checkpoints, the image-only class used to build it here)
IMAGE_ONLY_PROCESSORS = {
    "qwen2_vl": ("Qwen2VLProcessor", ImageOnlyQwen2VLProcessor),
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", ImageOnlyQwen2_5_VLProcessor),
}
if ImageOnlyQwen3VLProcessor is not None:
    IMAGE_ONLY_PROCESSORS["qwen3_vl"] = ("Qwen3VLProcessor", ImageOnlyQwen3VLProcessor)
