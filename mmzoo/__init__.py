"""mmzoo: a Keras 3 multi-backend model zoo for multimodal NLP."""

from mmzoo import datasets
from mmzoo import layers
from mmzoo import models
from mmzoo import plots
from mmzoo import presets
from mmzoo.presets import list_presets
from mmzoo.presets import load
from mmzoo.presets import register_presets_dir
from mmzoo.version import __version__

register_presets_dir()
