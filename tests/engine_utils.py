"""A tiny model and helpers shared by the engine tests."""
import jax
import numpy as np

from fsig_jax.engine.hparams import default_hparams
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.config import StyleGAN2Config

TINY = StyleGAN2Config(16, (32, 32, 16), (16, 32, 32), z_dim=32, w_dim=32, n_mlp=2)


def short_run(c, steps, checkpoint_every=1, **overrides):
  """A run config `c` made short for a test: `steps` steps, a progress line every
  step, checkpoints every `checkpoint_every`, no sample grids; then `overrides`
  (top-level fields). Returns c."""
  c.steps = steps
  c.log_every = 1
  c.checkpoint_every = checkpoint_every
  c.sample_every = 0
  for k, v in overrides.items():
    c[k] = v
  return c


def tiny_bundle(seed=0):
  return init_bundle(TINY, jax.random.PRNGKey(seed))


def tiny_hparams(**kw):
  hp = default_hparams()
  hp.d_reg_every = 2  # exercise both lazy regularisers within a few steps
  hp.g_reg_every = 2
  for k, v in kw.items():
    setattr(hp, k, v)
  return hp


def tiny_images(n=8, seed=3):
  return np.asarray(jax.random.uniform(jax.random.PRNGKey(seed), (n, 16, 16, 3),
                                       minval=-1, maxval=1))


def leaves_with_paths(tree):
  return {jax.tree_util.keystr(p): np.asarray(x)
          for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}
