"""The run config: everything one adaptation run needs, as an ml_collections tree.

Experiment files in configs/ start from `default_config()` and change fields;
`adapt()` does the same from keyword overrides. The config is passed in; the
library never reads config files itself.
"""
from typing import Any, Dict

import ml_collections

from fsig_jax.engine.hparams import default_hparams
from fsig_jax.errors import ConfigError


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = 'adapt'            # which trainer runs the config: a key of fsig_jax.api.TRAINERS
  c.model = ml_collections.ConfigDict()
  c.model.checkpoint = ''        # .pt / .pkl / fsig-jax orbax dir
  c.model.resolution = 0         # 0: as in the checkpoint; else checked against it
  c.model.description = ''       # what the checkpoint is and where users get it (for errors)
  c.data = ml_collections.ConfigDict()
  c.data.source = ''             # folder, 'tfds:name[:split]'
  c.data.max_images = 0          # 0: all
  c.data.min_images = 1
  c.data.flip = True             # rosinality/CDC train.py: RandomHorizontalFlip
  c.data.stream_above = 10_000   # a folder of more images is read from disk per batch, not
  #                                held (0: always held; held sets are uint8); same batches
  c.data.description = ''        # what the data is and where users get it (for errors)
  c.method = ml_collections.ConfigDict()
  c.method.names = 'tgan'        # comma-separated, composed in order, e.g. 'ewc,cdc'
  c.method.kwargs = ml_collections.ConfigDict()  # {method name: {arg: value}}
  c.hparams = default_hparams()
  c.steps = 1000
  c.seed = 0
  c.log_every = 10
  c.checkpoint_every = 250
  c.keep_checkpoints = 3
  c.sample_every = 250
  c.num_samples = 8
  c.eval_every = 0               # 0: no evaluation; else at multiples of N and the last step
  c.eval = eval_config()
  c.max_devices = 0              # 0: every device; N: at most N, e.g. a paper's batch 2 on 8 cores
  return c


def eval_config() -> ml_collections.ConfigDict:
  """Periodic-evaluation settings (fsig_jax.metrics.evaluate); may change on resume."""
  e = ml_collections.ConfigDict()
  e.reference = 'auto'  # held-out images for FID-VGG/KID-VGG (folder, derived:NAME:test, stats
  #                       .npz); 'auto': from data.source (evaluate.default_sources); '': none,
  #                       FID-VGG is then against the few-shot images
  e.few_shot = 'auto'   # intra-LPIPS cluster centers; 'auto': data.source if few-shot; '': off
  e.num_samples = 1000  # CDC Sec. 4.2: intra-LPIPS over 1000 samples
  e.metrics = 'auto'    # comma-separated fid_vgg,kid_vgg,intra_lpips; 'auto': all the data allows
  e.seed = 0            # latents and noise: the same samples at every evaluation of a run
  e.batch_size = 32
  e.cache_dir = ''      # reference feature cache; '': WORKDIR/eval/cache
  e.inception_weights = ''  # pytorch-fid's pt_inception-2015-12-05-*.pth (or .npz): FID / KID
  #                           on Inception-v3, comparable with papers; '': VGG16 (FID-VGG)
  return e


def method_names(config) -> list:
  return [n.strip() for n in str(config.method.names).split(',') if n.strip()]


def method_kwargs(config) -> Dict[str, Dict[str, Any]]:
  return {k: dict(v) for k, v in config.method.kwargs.to_dict().items()}
