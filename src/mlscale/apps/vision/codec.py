"""Vision models to and from bytes and the registry, pickle-free: ONNX for serving, safetensors for training.

An artifact is two byte blobs and a JSON description:

- ``model.onnx``: the network exported with the TorchScript exporter (``dynamo=False``: the
  dynamo exporter needs ``onnxscript``, which the ``vision`` extra does not bring), input
  ``pixels`` (``batch x C x H x W`` float32, normalised, the batch axis dynamic), output
  ``logits`` (``batch x classes``);
- ``weights.safetensors``: the ``state_dict`` (for further training or eager torch);
- :class:`~mlscale.apps.vision.model.VisionMeta` (labels, input size, normalisation), the
  parameters, the training history, and the SHA-256 of both blobs.

The registry of this version stores arrays, tables and JSON only, so each blob goes in as a
``uint8`` array (``model_onnx.npy``, ``weights_safetensors.npy``: plain bytes, never a pickle)
and the description in the manifest's ``extra["vision"]``. Loading checks, before anything
runs, that the blobs hash to what the manifest says, that the ONNX graph's input and output
shapes are the metadata's, and (with torch) that every weight has the shape the metadata's
network needs; a mismatch raises :class:`~mlscale.errors.ArtifactError` naming what differs.
``torch.save`` and pickle are never used.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlscale.apps.base import Artifact, publish_model
from mlscale.apps.vision._deps import require
from mlscale.apps.vision.model import VisionMeta, VisionModel
from mlscale.apps.vision.net import build_net
from mlscale.apps.vision.params import VisionParams
from mlscale.errors import ArtifactError
from mlscale.registry import LoadedModel, Manifest, Store

__all__ = [
    "APP",
    "CODEC",
    "OPSET",
    "VisionArtifact",
    "VisionCodec",
    "check_onnx",
    "decode",
    "encode",
    "export_onnx",
    "load_weights",
    "publish",
    "read_artifact",
    "weights_bytes",
]

APP = "vision"
#: ONNX opset of the export (ONNX Runtime 1.18+ runs it).
OPSET = 17
_ONNX_KEY = "model_onnx"
_WEIGHTS_KEY = "weights_safetensors"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class VisionArtifact:
    """What a vision model is stored as: the two blobs and the JSON facts."""

    onnx: bytes
    weights: bytes
    meta: VisionMeta
    params: VisionParams
    history: tuple[Mapping[str, float], ...] = ()

    def arrays(self) -> dict[str, NDArray[np.uint8]]:
        """The blobs as ``uint8`` arrays, for :meth:`Store.publish`."""
        return {
            _ONNX_KEY: np.frombuffer(self.onnx, dtype=np.uint8),
            _WEIGHTS_KEY: np.frombuffer(self.weights, dtype=np.uint8),
        }

    def extra(self) -> dict[str, Any]:
        """The manifest's ``extra["vision"]``: metadata, blob hashes, history."""
        return {
            "vision": {
                **self.meta.to_dict(),
                "onnx_sha256": _sha256(self.onnx),
                "weights_sha256": _sha256(self.weights),
                "opset": OPSET,
                "history": [dict(h) for h in self.history],
            }
        }


def export_onnx(net: Any, meta: VisionMeta) -> bytes:
    """``net`` (on any device) as ONNX bytes with a dynamic batch axis."""
    torch = require("torch")
    net = net.eval()
    device = next(net.parameters()).device
    example = torch.zeros(1, meta.channels, meta.height, meta.width, device=device)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.9+ deprecates the TorchScript exporter in favour of dynamo, which needs onnxscript.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            buf,
            dynamo=False,
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
    return buf.getvalue()


def weights_bytes(net: Any) -> bytes:
    """``net``'s ``state_dict`` as a safetensors file (CPU tensors)."""
    st = require("safetensors.torch")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    data: bytes = st.save(state)
    return data


def load_weights(data: bytes, meta: VisionMeta, *, where: str = "weights") -> Any:
    """A network for ``meta`` with the safetensors ``data`` loaded; every name and shape must match."""
    st = require("safetensors.torch")
    try:
        state = st.load(bytes(data))
    except Exception as err:  # safetensors raises its own SafetensorError (and others) on a bad header
        raise ArtifactError(f"{where}: not a readable safetensors file ({err})") from None
    net = build_net(meta.spec)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {unexpected[:4]}" if unexpected else "",
                ", ".join(f"{k} is {list(found[k])}, expected {list(expected[k])}" for k in wrong[:4]),
            )
            if part
        )
        raise ArtifactError(f"{where}: the weights do not fit the network the metadata describes: {detail}")
    net.load_state_dict(state)
    return net.eval()


def check_onnx(data: bytes, meta: VisionMeta, *, where: str = "model.onnx") -> None:
    """Refuse ONNX bytes whose input or output shape is not the metadata's (or that do not parse)."""
    onnx = require("onnx")
    try:
        model = onnx.load_model_from_string(bytes(data))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises DecodeError, ValidationError... on a bad file
        raise ArtifactError(f"{where}: not a valid ONNX model ({type(err).__name__}: {err})") from None

    def dims(value: Any) -> list[int | str]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = [i for i in model.graph.input if i.name == "pixels"]
    outputs = [o for o in model.graph.output if o.name == "logits"]
    if not inputs or not outputs:
        raise ArtifactError(f"{where}: expected an input 'pixels' and an output 'logits'")
    want_in: list[int | str] = ["batch", meta.channels, meta.height, meta.width]
    want_out: list[int | str] = ["batch", len(meta.labels)]
    if dims(inputs[0]) != want_in or dims(outputs[0]) != want_out:
        raise ArtifactError(
            f"{where}: the graph takes {dims(inputs[0])} and gives {dims(outputs[0])}; "
            f"the metadata says {want_in} -> {want_out}"
        )


def encode(model: VisionModel) -> VisionArtifact:
    """Export a fitted model."""
    return VisionArtifact(
        onnx=export_onnx(model.net, model.meta),
        weights=weights_bytes(model.net),
        meta=model.meta,
        params=model.params,
        history=tuple(model.history),
    )


def publish(
    store: Store,
    name: str,
    model: VisionModel,
    *,
    metrics: Mapping[str, float],
    engine: str,
    data_fingerprint: str,
    extra: Mapping[str, Any] | None = None,
) -> Manifest:
    """Publish a fitted model as a new version of ``vision/NAME`` (the contract's publish, with this codec)."""
    return publish_model(
        store,
        APP,
        CODEC,
        name,
        model,
        metrics=metrics,
        engine=engine,
        data_fingerprint=data_fingerprint,
        extra=extra,
    )


def read_artifact(loaded: LoadedModel, *, check: bool = True) -> VisionArtifact:
    """The blobs and facts of a loaded version, checked (hashes, ONNX shapes) unless ``check=False``.

    Needs ``onnx`` for the graph check but not torch: serving uses this.
    """
    manifest = loaded.manifest
    ref = str(manifest.ref)
    if manifest.app != APP:
        raise ArtifactError(f"{ref} is a {manifest.app!r} model, not a vision model")
    info = manifest.extra.get("vision")
    if not isinstance(info, Mapping):
        raise ArtifactError(f"{ref}: the manifest lacks its 'vision' metadata")
    missing = [k for k in (_ONNX_KEY, _WEIGHTS_KEY) if k not in loaded.arrays]
    if missing:
        raise ArtifactError(f"{ref}: the artifact lacks {', '.join(f'{k}.npy' for k in missing)}")
    meta = VisionMeta.from_dict(info)
    blobs = {}
    for key, hash_key in ((_ONNX_KEY, "onnx_sha256"), (_WEIGHTS_KEY, "weights_sha256")):
        array = loaded.arrays[key]
        if array.dtype != np.uint8 or array.ndim != 1:
            raise ArtifactError(f"{ref}: {key}.npy must be a 1-D uint8 array, found {array.dtype}{list(array.shape)}")
        data = array.tobytes()
        if check and _sha256(data) != info.get(hash_key):
            raise ArtifactError(f"{ref}: {key}.npy does not hash to the manifest's {hash_key} (tampered?)")
        blobs[key] = data
    try:
        params = VisionParams.from_dict(manifest.params)
    except Exception as err:  # a ValidationError from a hand-edited manifest is an artifact problem here
        raise ArtifactError(f"{ref}: bad parameters in the manifest ({err})") from None
    if check:
        check_onnx(blobs[_ONNX_KEY], meta, where=f"{ref} {_ONNX_KEY}.npy")
    history = tuple(h for h in info.get("history", ()) if isinstance(h, Mapping))
    return VisionArtifact(blobs[_ONNX_KEY], blobs[_WEIGHTS_KEY], meta, params, history)


def decode(loaded: LoadedModel) -> VisionModel:
    """A loaded version back as a torch model (weights from safetensors; shapes checked)."""
    art = read_artifact(loaded)
    net = load_weights(art.weights, art.meta, where=f"{loaded.manifest.ref} {_WEIGHTS_KEY}.npy")
    return VisionModel(net, art.meta, art.params, [dict(h) for h in art.history], onnx=art.onnx)


class VisionCodec:
    """The contract's :class:`~mlscale.apps.base.Codec`: :func:`encode` out, :func:`decode` back (torch).

    Serving does not go through it: ``predictor`` reads the artifact with
    :func:`read_artifact`, which needs no torch.
    """

    def to_artifact(self, model: VisionModel) -> Artifact:
        """The ONNX and safetensors blobs as ``uint8`` arrays, the facts as params and extras."""
        art = encode(model)
        return Artifact(arrays=art.arrays(), params=art.params.to_dict(), extra=art.extra())

    def from_artifact(self, loaded: LoadedModel) -> VisionModel:
        """The torch model of a loaded version (hashes and shapes checked)."""
        return decode(loaded)


#: The codec instance the application declares.
CODEC = VisionCodec()
