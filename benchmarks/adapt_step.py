"""The adaptation step that the step benchmarks measure, built one way.

`benchmarks/step_time.py` (seconds per step, or with --memory_only the
compiled memory) and `benchmarks/compare_torch.py`'s JAX side (against
rosinality's PyTorch step) both measure this program: a rosinality-width
StyleGAN2 (channel multiplier `mult`, z = w = 512, 8 mapping layers), randomly
initialised, one method's jitted train step (fsig_jax/engine/step.py) on a
batch of uniform random reals in [-1, 1]. A method's own image streams
(`Method.data`, e.g. KD-FSIG's source images) are fed independent random
batches of the same shape.
"""
import json
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from fsig_jax.engine.hparams import default_hparams
from fsig_jax.engine.state import init_state
from fsig_jax.engine.step import make_train_step
from fsig_jax.methods import get_method
from fsig_jax.models.bundle import init_bundle
from fsig_jax.models.config import StyleGAN2Config, rosinality_channels


class Step(NamedTuple):
  cfg: StyleGAN2Config
  hp: object
  state: dict
  real: jax.Array
  extra: Optional[dict]
  step: object  # the jitted train step: step(state, real, extra) -> (state, metrics)

  def compile(self):
    return self.step.lower(self.state, self.real, self.extra).compile()


def method_kwargs(text: str) -> dict:
  """The --method_kwargs flag: JSON {method: {arg: value}}, empty for none."""
  return json.loads(text) if text else {}


def config(res: int, mult: int = 2) -> StyleGAN2Config:
  """rosinality's StyleGAN2 at `res` px: channel multiplier `mult`, z = w = 512, 8
  mapping layers (rosinality train.py's defaults)."""
  ch = rosinality_channels(res, mult)
  return StyleGAN2Config(res, ch, ch, z_dim=512, w_dim=512, n_mlp=8)


def build(res: int, method_name: str, kwargs: Optional[dict] = None, batch: int = 4,
          mult: int = 2, hp=None) -> Step:
  """The step of `method_name` ('a+b' composes) at `res` px; `hp` defaults to the
  engine's training hyperparameters (lazy R1 every 16, path length every 4)."""
  cfg = config(res, mult)
  method = get_method(method_name.split('+'), **(kwargs or {}))
  if hp is None:
    hp = default_hparams()
  hp.batch_size = batch
  state = init_state(init_bundle(cfg, jax.random.PRNGKey(0)), hp, method, jax.random.PRNGKey(1),
                     images=jnp.zeros((10, res, res, 3)))
  real = jax.random.uniform(jax.random.PRNGKey(2), (batch, res, res, 3), minval=-1)
  extra = {name: jax.random.uniform(jax.random.fold_in(jax.random.PRNGKey(3), i),
                                    real.shape, minval=-1)
           for i, name in enumerate(sorted(method.data))} or None
  return Step(cfg, hp, state, real, extra, make_train_step(cfg, hp, method))


def memory_gib(compiled) -> dict:
  """XLA's buffer assignment of a compiled program, GiB: temporaries (activations,
  autodiff residuals), arguments, outputs; deterministic for a given program."""
  m = compiled.memory_analysis()
  if m is None:
    return {'temp_gib': float('nan'), 'argument_gib': float('nan'), 'output_gib': float('nan')}
  return {'temp_gib': round(m.temp_size_in_bytes / 2**30, 2),
          'argument_gib': round(m.argument_size_in_bytes / 2**30, 2),
          'output_gib': round(m.output_size_in_bytes / 2**30, 2)}
