"""mamba-ner: named-entity recognition with a (bidirectional) Mamba backbone and a CRF head.

Importing the package registers the model with the `transformers` Auto classes:
`AutoConfig.for_model("mamba-crf")`, `AutoModel`, `AutoModelForTokenClassification` and
`AutoModelForMaskedLM` (the pretraining model of `mamba_ner.pretraining`).
"""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForTokenClassification

from .configuration_mamba_crf import MambaCrfConfig
from .crf import LinearChainCRF
from .modeling_mamba_crf import (
    MambaCrfForMaskedLM,
    MambaCrfForTokenClassification,
    MambaCrfModel,
    MambaCrfPreTrainedModel,
    MambaCrfTokenClassifierOutput,
)
from .pipeline_mamba_crf import MambaCrfTokenClassificationPipeline, mamba_crf_pipeline

__version__ = "0.1.0"

AutoConfig.register(MambaCrfConfig.model_type, MambaCrfConfig, exist_ok=True)
AutoModel.register(MambaCrfConfig, MambaCrfModel, exist_ok=True)
AutoModelForTokenClassification.register(MambaCrfConfig, MambaCrfForTokenClassification, exist_ok=True)
AutoModelForMaskedLM.register(MambaCrfConfig, MambaCrfForMaskedLM, exist_ok=True)
# Saved checkpoints carry their code and an `auto_map`, so they load with trust_remote_code=True
# where this package is not installed.
MambaCrfConfig.register_for_auto_class()
MambaCrfModel.register_for_auto_class("AutoModel")
MambaCrfForTokenClassification.register_for_auto_class("AutoModelForTokenClassification")
MambaCrfForMaskedLM.register_for_auto_class("AutoModelForMaskedLM")

__all__ = [
    "LinearChainCRF",
    "MambaCrfConfig",
    "MambaCrfForMaskedLM",
    "MambaCrfForTokenClassification",
    "MambaCrfModel",
    "MambaCrfPreTrainedModel",
    "MambaCrfTokenClassificationPipeline",
    "MambaCrfTokenClassifierOutput",
    "mamba_crf_pipeline",
]
