"""Encoders, backbones, preprocessors and tasks of mmzoo."""

from mmzoo.models.efficientnet_lite.efficientnet_lite_backbone import (
    EfficientNetLiteBackbone,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_classifier import (
    EfficientNetLiteImageClassifier,
)
from mmzoo.models.efficientnet_lite.efficientnet_lite_image_classifier import (
    EfficientNetLiteImageClassifierPreprocessor,
)
from mmzoo.models.encoders.audio_encoder import AudioEncoder
from mmzoo.models.encoders.image_encoder import ImageEncoder
from mmzoo.models.encoders.text_encoder import TextEncoder
from mmzoo.models.multimodal.multimodal_backbone import MultimodalBackbone
from mmzoo.models.multimodal.multimodal_classifier import MultimodalClassifier
from mmzoo.models.multimodal.multimodal_classifier import MultimodalTask
from mmzoo.models.multimodal.multimodal_multi_task import MultimodalMultiTask
from mmzoo.models.multimodal.multimodal_preprocessor import (
    MultimodalPreprocessor,
)
from mmzoo.models.sentence_encoder.sentence_encoder import SentenceEncoder
from mmzoo.models.sentence_encoder.sentence_encoder_preprocessor import (
    SentenceEncoderPreprocessor,
)
from mmzoo.models.sentence_encoder.sentence_encoder_tokenizer import (
    SentenceEncoderTokenizer,
)
from mmzoo.models.whisper.whisper_audio_encoder import WhisperAudioEncoder
from mmzoo.models.whisper.whisper_audio_to_text import WhisperAudioToText
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.models.whisper.whisper_tokenizer import WhisperTokenizer
from mmzoo.models.whisper.whisper_transcript_classifier import (
    WhisperAudioClassifierPreprocessor,
)
from mmzoo.models.whisper.whisper_transcript_classifier import (
    WhisperTranscriptClassifier,
)
