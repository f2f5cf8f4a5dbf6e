"""mlscale: keep a machine-learning application up as its users and data grow.

The stages, in the order data flows through them:

- :mod:`mlscale.data`: dataset catalogue, readers and file formats, out-of-core ingest, atomic writers;
- :mod:`mlscale.engines`: where training runs (``local`` or ``spark``);
- :mod:`mlscale.registry`: versioned, checksummed, pickle-free model artifacts;
- :mod:`mlscale.apps`: applications (``recommend`` ...) plugged into every stage.
"""

from mlscale._version import __version__
from mlscale.errors import MlscaleError

__all__ = ["MlscaleError", "__version__"]
