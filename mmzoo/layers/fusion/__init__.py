from mmzoo.layers.fusion.attention_fusion import AttentionFusion
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
