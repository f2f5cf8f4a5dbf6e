"""Image recognition: a small CNN trained with PyTorch (locally or on Spark), served with ONNX Runtime.

Contract-independent modules, each usable on its own:

- :mod:`~mlscale.apps.vision.params`: :class:`VisionParams`, every default in one frozen dataclass;
- :mod:`~mlscale.apps.vision.data`: :func:`open_dataset` (IDX, class folders, path tables), streamed;
- :mod:`~mlscale.apps.vision.net` / :mod:`~mlscale.apps.vision.model`: the CNN, its metadata, preprocessing;
- :mod:`~mlscale.apps.vision.train_local` / :mod:`~mlscale.apps.vision.train_spark`: :func:`fit`,
  :func:`fit_distributed` (TorchDistributor);
- :mod:`~mlscale.apps.vision.codec`: ONNX + safetensors artifacts, :func:`publish`, :func:`decode`;
- :mod:`~mlscale.apps.vision.predictor`, :mod:`~mlscale.apps.vision.scenario`,
  :mod:`~mlscale.apps.vision.predict`: serving, load testing, batch inference.

torch, onnx, onnxruntime, safetensors and Pillow are imported only by the functions that need
them (``pip install 'mlscale[vision]'``), so importing this package costs none of them.
"""

from mlscale.apps.vision.app import VisionApp
from mlscale.apps.vision.params import VisionParams

__all__ = ["VisionApp", "VisionParams", "application"]

#: The entry point the stages find this application by (``mlscale.apps`` group).
application = VisionApp()
