"""The ``.nmat`` bundle: the one artifact training hands to every renderer.

A bundle is one safetensors file (no pickle, no code) holding float16/float32 feature planes,
packed INT8 MLP weights, float32 scales, an optional height map, and a JSON manifest (format +
version, kind, tensor table, input ordering, angle parameterization, colour space, height
range, provenance, and a checksum sealing all of that and the tensors: version 2; version-1
files, whose checksum covers the tensors only, still load). :func:`load_bundle` bounds every
declared size before reading (:data:`MAX_TENSOR_BYTES`, the model limits), validates all of it
and raises :class:`BundleError` — and nothing else — for anything inconsistent;
:func:`save_bundle` writes atomically. :func:`export_inm` / :func:`import_inm` convert to and from the
InstantNeuralMaterial (Falcor) directory layout.

Imports neither torch nor a GPU device: numpy, safetensors and the standard library only.
"""

from .checksum import content_checksum
from .container import MAX_TENSOR_BYTES
from .errors import BundleError
from .inm import export_inm, import_inm, inm_file_names
from .manifest import FORMAT_NAME, FORMAT_VERSION, METADATA_KEY, SUPPORTED_VERSIONS, manifest_checksum
from .bundle import LAYOUTS, NEUMIP, TRIPLE_PLANE, Bundle, KindLayout, register_layout
from .nmat import bundle_bytes, inspect_bundle, load_bundle, save_bundle
from .random_bundle import make_random_bundle

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LAYOUTS",
    "MAX_TENSOR_BYTES",
    "METADATA_KEY",
    "NEUMIP",
    "SUPPORTED_VERSIONS",
    "TRIPLE_PLANE",
    "Bundle",
    "BundleError",
    "KindLayout",
    "bundle_bytes",
    "content_checksum",
    "export_inm",
    "import_inm",
    "inm_file_names",
    "inspect_bundle",
    "load_bundle",
    "make_random_bundle",
    "manifest_checksum",
    "register_layout",
    "save_bundle",
]
