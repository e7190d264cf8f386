"""The configuration of a VisPlay run: one pydantic schema, loaded from defaults < preset < YAML < ``--set``.

- :mod:`visplay.config.schema`: the run's sections (every key's type, bounds and help line);
- :mod:`visplay.config.grpo`: a GRPO stage's settings, with each role's paper and tiny presets;
- :mod:`visplay.config.base`: what sections share, and the one-line ``config key a.b.c: ...`` errors;
- :mod:`visplay.config.load`: YAML, ``--set``, presets, deprecated keys;
- :mod:`visplay.config.render`: config.yaml and the ``--help-config`` listing.
"""

from visplay.config.grpo import GRPOSettings
from visplay.config.load import (
    DEPRECATED,
    REQUIRED,
    load_evolve_config,
    preview_evolve_config,
    rename_deprecated,
    tiny_preset,
)
from visplay.config.render import describe_values, to_dict, to_yaml
from visplay.config.schema import (
    CurationConfig,
    DataConfig,
    EvalBenchmark,
    EvalConfig,
    EvolveConfig,
    ModelConfig,
    QuestionerConfig,
    ReasonerConfig,
    RewardConfig,
    SamplerConfig,
    Sampling,
)

__all__ = ["CurationConfig", "DataConfig", "DEPRECATED", "EvalBenchmark", "EvalConfig", "EvolveConfig",
           "GRPOSettings", "ModelConfig", "QuestionerConfig", "ReasonerConfig", "REQUIRED", "RewardConfig",
           "SamplerConfig", "Sampling", "describe_values", "load_evolve_config", "preview_evolve_config",
           "rename_deprecated", "tiny_preset", "to_dict", "to_yaml"]
