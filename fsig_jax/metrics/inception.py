"""Inception-v3 of standard FID (the 2015-12-05 TF graph) in Flax, and its weight loader.

Architecture: pytorch-fid's `fid_inception_v3()` (github.com/mseitzer/pytorch-fid,
src/pytorch_fid/inception.py), i.e. torchvision's Inception3 with the
`FIDInceptionA/C/E_1/E_2` patches that reproduce the TF graph of Heusel et al.
(2017, TTUR): average pools exclude padding (`count_include_pad=False`) and
Mixed_7c pools with max instead of average. Input handling is pytorch-fid's
`InceptionV3(resize_input=True, normalize_input=True)`: bilinear resize to
299x299 (half-pixel centers, no antialias: `F.interpolate(align_corners=False)`),
values in [-1, 1] (our images already are), output the 2048-d average pool of
Mixed_7c ("pool3"). BasicConv2d = conv (no bias) -> BatchNorm(eps=1e-3) -> ReLU.

Weights are not shipped (no offline copy exists). Pass pytorch-fid's own file,
read as it is with the torch-free reader (fsig_jax/convert/torch_file.py), no
conversion step and no torch:

    # github.com/mseitzer/pytorch-fid/releases/download/fid_weights/
    #   pt_inception-2015-12-05-6726825d.pth   (pytorch-fid's FID_WEIGHTS_URL)
    inception_features("pt_inception-2015-12-05-6726825d.pth")

An `.npz` of the same state dict (`np.savez(path, **{k: v.numpy() ...})`, the
format earlier versions required) still works. Keys are the torch state-dict
names (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch1x1.bn.running_mean`, ...);
`fc.*` and `*.num_batches_tracked` are accepted and ignored.
"""
import functools
import os
import zipfile
from typing import Dict, Mapping, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fsig_jax.convert import torch_file
from fsig_jax.errors import CheckpointError
from fsig_jax.metrics import features as features_lib

INCEPTION_NAME = "inception-v3-fid-2015-12-05"
INCEPTION_SIZE = 299  # pytorch-fid resize_input target.
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")  # pytorch-fid inception.py
_IGNORED_KEYS = ("fc.weight", "fc.bias")


def _pad(p):
  return ((p[0], p[0]), (p[1], p[1]))


class BasicConv2d(nn.Module):
  """torchvision BasicConv2d: conv without bias, BatchNorm(eps=0.001), ReLU."""
  features: int
  kernel: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, self.strides, padding=_pad(self.padding),
                use_bias=False, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _avg3(x):
  # FID patch: TF's average pool ignores the zero padding.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=_pad((1, 1)), count_include_pad=False)


def _max3s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2))


class InceptionA(nn.Module):
  """FIDInceptionA (Mixed_5b/c/d)."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, (1, 1), name="branch1x1")(x)
    b5 = BasicConv2d(48, (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv2d(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, (1, 1), name="branch_pool")(_avg3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """torchvision InceptionB (Mixed_6a), unpatched."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, (3, 3), strides=(2, 2), name="branch3x3")(x)
    bd = BasicConv2d(64, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, (3, 3), strides=(2, 2), name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max3s2(x)], axis=-1)


class InceptionC(nn.Module):
  """FIDInceptionC (Mixed_6b/c/d/e)."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, (1, 1), name="branch1x1")(x)
    b7 = BasicConv2d(c7, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, (1, 1), name="branch_pool")(_avg3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """torchvision InceptionD (Mixed_7a), unpatched."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv2d(320, (3, 3), strides=(2, 2), name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, (3, 3), strides=(2, 2), name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max3s2(x)], axis=-1)


class InceptionE(nn.Module):
  """FIDInceptionE_1 (pool='avg', Mixed_7b) / FIDInceptionE_2 (pool='max', Mixed_7c)."""
  pool: str = "avg"

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, (1, 1), name="branch1x1")(x)
    b3 = BasicConv2d(384, (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate(
        [BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
         BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv2d(448, (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate(
        [BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
         BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.pool == "max":  # FID patch of Mixed_7c (a quirk of the TF graph).
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=_pad((1, 1)))
    else:
      pooled = _avg3(x)
    bp = BasicConv2d(192, (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3FID(nn.Module):
  """FID Inception-v3: NHWC [-1, 1] images of any size -> (N, 2048) pool3 features."""

  @nn.compact
  def __call__(self, x):
    x = x.astype(jnp.float32)
    x = jax.image.resize(x, (x.shape[0], INCEPTION_SIZE, INCEPTION_SIZE, x.shape[-1]), "bilinear",
                         antialias=False)
    x = BasicConv2d(32, (3, 3), strides=(2, 2), name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max3s2(x)
    x = BasicConv2d(80, (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max3s2(x)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    x = InceptionC(128, name="Mixed_6b")(x)
    x = InceptionC(160, name="Mixed_6c")(x)
    x = InceptionC(160, name="Mixed_6d")(x)
    x = InceptionC(192, name="Mixed_6e")(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE("avg", name="Mixed_7b")(x)
    x = InceptionE("max", name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


# --- torch state-dict names <-> Flax variables --------------------------------
# (collection, leaf) -> torch suffix; conv kernels are OIHW in torch, HWIO in Flax.
_LEAF_TO_TORCH = {("params", "kernel"): "weight", ("params", "scale"): "weight",
                  ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
                  ("batch_stats", "var"): "running_var"}


def _flat(variables) -> Dict[Tuple[str, ...], jax.Array]:
  out = {}
  for coll, tree in variables.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      out[(coll,) + tuple(k.key for k in path)] = leaf
  return out


def _torch_name(path: Tuple[str, ...]) -> str:
  coll, *modules, leaf = path
  return ".".join(modules + [_LEAF_TO_TORCH[(coll, leaf)]])


def _to_torch_layout(path, value):
  return np.transpose(value, (3, 2, 0, 1)) if path[-1] == "kernel" else value


def _to_flax_layout(path, value):
  return np.transpose(value, (2, 3, 1, 0)) if path[-1] == "kernel" else value


@functools.lru_cache(maxsize=1)
def _variable_shapes() -> Dict[Tuple[str, ...], Tuple[int, ...]]:
  image = jax.ShapeDtypeStruct((1, INCEPTION_SIZE, INCEPTION_SIZE, 3), jnp.float32)
  abstract = jax.eval_shape(InceptionV3FID().init, jax.random.PRNGKey(0), image)
  return {path: tuple(leaf.shape) for path, leaf in _flat(abstract).items()}


def expected_state_dict_shapes() -> Dict[str, Tuple[int, ...]]:
  """The pytorch-fid state-dict names this module needs, with their torch shapes."""
  return {_torch_name(p): tuple(_to_torch_layout(p, np.empty(s, np.bool_)).shape)
          for p, s in _variable_shapes().items()}


def variables_to_state_dict(variables) -> Dict[str, np.ndarray]:
  """Flax variables of `InceptionV3FID` -> torch-named, torch-layout numpy arrays."""
  return {_torch_name(p): _to_torch_layout(p, np.asarray(v)) for p, v in _flat(variables).items()}


def state_dict_to_variables(state_dict: Mapping[str, np.ndarray], source: str = "state dict"):
  """pytorch-fid state dict (name -> array) -> Flax variables, checking every key and shape.

  Raises:
    CheckpointError (a ValueError): naming the missing key, the key with a wrong shape,
      or unexpected keys (e.g. torchvision's `AuxLogits.*`, whose ImageNet weights are
      not FID's).
  """
  shapes = _variable_shapes()
  names = {_torch_name(p): p for p in shapes}
  missing = [n for n in names if n not in state_dict]
  if missing:
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    raise CheckpointError(f"Inception weights in {source} lack key {missing[0]!r}{more}; pass "
                          f"pytorch-fid's FID weights file ({FID_WEIGHTS_URL}).")
  unexpected = [k for k in state_dict if k not in names and k not in _IGNORED_KEYS
                and not k.endswith("num_batches_tracked")]
  if unexpected:
    raise CheckpointError(f"Inception weights in {source} have unexpected keys "
                     f"{sorted(unexpected)[:5]} ({len(unexpected)} in all); is this pytorch-fid's "
                     "FID Inception (not torchvision's ImageNet one)?")
  flat = {}
  for name, path in names.items():
    value = np.asarray(state_dict[name], np.float32)
    expected = tuple(_to_torch_layout(path, np.empty(shapes[path], np.bool_)).shape)
    if value.shape != expected:
      raise CheckpointError(f"Inception weights in {source}: key {name!r} has shape "
                            f"{value.shape}, expected {expected}.")
    flat[path] = jnp.asarray(_to_flax_layout(path, value))
  variables = {}
  for path, value in flat.items():
    node = variables
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return variables


def _is_npz(path: str) -> bool:
  """An npz is a zip of .npy files; a torch.save zip holds <folder>/data.pkl instead."""
  if not zipfile.is_zipfile(path):
    return False
  with zipfile.ZipFile(path) as zf:
    return not any(n == "data.pkl" or n.endswith("/data.pkl") for n in zf.namelist())


def load_inception_weights(path) -> dict:
  """pytorch-fid's `pt_inception-2015-12-05-*.pth` (read without torch) or an `.npz`
  of the same state dict -> Flax variables of `InceptionV3FID`.

  Raises:
    CheckpointError: naming the file and the problem (missing file, not a
      state dict, a missing / misshapen / unexpected key).
  """
  label = os.fspath(path)
  if not os.path.isfile(label):
    raise CheckpointError(f"Inception weights {label}: no such file; download pytorch-fid's "
                          f"{FID_WEIGHTS_URL} and pass its path.")
  if _is_npz(label):
    with np.load(label, allow_pickle=False) as data:
      state_dict = {k: data[k] for k in data.files}
  else:
    state_dict = torch_file.load_torch_file(label)
  if not isinstance(state_dict, dict) or not all(
      isinstance(v, np.ndarray) for v in state_dict.values()):
    raise CheckpointError(f"Inception weights {label}: not a state dict of tensors (top level: "
                          f"{type(state_dict).__name__}); pass pytorch-fid's {FID_WEIGHTS_URL}.")
  return state_dict_to_variables(state_dict, source=label)


@jax.jit
def _pool3(variables, images):
  return InceptionV3FID().apply(variables, images)


def inception_features(weights) -> features_lib.FeatureExtractor:
  """FID's feature extractor "inception-v3-fid-2015-12-05" (2048-d pool3, reported as FID).

  Args:
    weights: path of pytorch-fid's `.pth` (or an `.npz` of it), or Flax variables from
      `load_inception_weights`.
  """
  variables = load_inception_weights(weights) if isinstance(weights, (str, bytes)) or hasattr(
      weights, "__fspath__") else weights
  return features_lib.FeatureExtractor(name=INCEPTION_NAME, dim=2048,
                                       fn=lambda images: _pool3(variables, images))
