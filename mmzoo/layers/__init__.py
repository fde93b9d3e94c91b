"""Fusion layers and building blocks of mmzoo."""

from mmzoo.layers.fusion.attention_fusion import AttentionFusion
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_converter import (
    EfficientNetLiteImageConverter,
)
from mmzoo.layers.fusion.conv_fusion import ConvFusion
from mmzoo.layers.fusion.modality_fusion import ModalityFusion
from mmzoo.layers.fusion.projection_fusion import ProjectionFusion
from mmzoo.layers.masked_average_pooling import MaskedAveragePooling
from mmzoo.layers.preprocessing.waveform_converter import WaveformConverter
from mmzoo.layers.spec_augment import SpecAugment
from mmzoo.layers.preprocessing.whisper_audio_converter import (
    WhisperAudioConverter,
)
from mmzoo.models.whisper.whisper_transcript_scorer import (
    WhisperTranscriptScorer,
)
