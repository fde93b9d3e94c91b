"""Fusion layers and building blocks of mmzoo."""

from mmzoo.layers.fusion.attention_fusion import AttentionFusion
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_converter import (
    EfficientNetLiteImageConverter,
)
from mmzoo.layers.cross_modal_transformer import CrossModalTransformer
from mmzoo.layers.fusion.conv_fusion import ConvFusion
from mmzoo.layers.fusion.cross_modal_attention_fusion import (
    CrossModalAttentionFusion,
)
from mmzoo.layers.fusion.gated_multimodal_unit import GatedMultimodalUnit
from mmzoo.layers.fusion.late_fusion import LateFusion
from mmzoo.layers.fusion.low_rank_fusion import LowRankFusion
from mmzoo.layers.fusion.modality_fusion import ModalityFusion
from mmzoo.layers.fusion.projection_fusion import ProjectionFusion
from mmzoo.layers.fusion.tensor_fusion import TensorFusion
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.layers.preprocessing.waveform_converter import WaveformConverter
from mmzoo.layers.spec_augment import SpecAugment
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper.whisper_transcript_scorer import (
    WhisperTranscriptScorer,
)
