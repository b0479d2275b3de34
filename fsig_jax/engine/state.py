"""The train state: one plain-dict pytree carried through every step.

  step        int32 scalar
  key         PRNG key (raw uint32[2]); every random draw is split from it
  G, D        {'net': network params, **method extras} (the trained sides)
  G_ema       EMA of G's effective net (G['net'] unless a method re-parameterises
              it, `Method.effective_params`): always a plain generator
  G_buffers   w_avg (tracked as in ada-pytorch) and the constant noise
  source_G    the generator params adaptation started from (frozen)
  opt_G/opt_D optax Adam states of the two sides
  pl_mean     running mean of path lengths
  method      {method name: that method's state}
  ada         only with hp.augment == 'ada': the augmentation probability p, its
              sign accumulator and the last r_t (fsig_jax/data/ada.py `ada_init`)

Nothing else is kept anywhere: checkpointing this dict is checkpointing the run.
"""
import functools
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from fsig_jax.data import ada
from fsig_jax.engine.hparams import lazy_ratio
from fsig_jax.errors import ConfigError
from fsig_jax.methods import REGISTRY, compose
from fsig_jax.methods.context import InitContext
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.functional import Models


def late_start(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """`inner` (e.g. optax.scale_by_adam) applied to every parameter leaf on its own,
  skipping the leaves whose gradient is exactly zero everywhere: their update is
  0 and their state (Adam's step count and moments) stays as it was.

  This is torch's Adam for parameters that get no gradient for a while (RICK's
  warm-up, where whole G convs and D blocks are held out): each one starts its
  step count when it first trains, so its first update has magnitude lr. With
  optax's one shared count such a parameter would start at step ~250 with
  second moments still 0, and its first updates would be ~10x lr. A leaf that
  always gets a gradient gets what `inner` computes (to float32 rounding; tested).
  """
  def init(params):
    return jax.tree.map(inner.init, params)

  def update(updates, state, params=None):
    del params
    flat_u, treedef = jax.tree.flatten(updates)
    flat_s = treedef.flatten_up_to(state)
    out_u, out_s = [], []
    for g, s in zip(flat_u, flat_s):
      new_u, new_s = inner.update(g, s)
      active = jnp.any(g != 0)
      out_u.append(jnp.where(active, new_u, jnp.zeros_like(new_u)))
      out_s.append(jax.tree.map(lambda a, b: jnp.where(active, a, b), new_s, s))
    return treedef.unflatten(out_u), treedef.unflatten(out_s)

  return optax.GradientTransformation(init, update)


def make_optimizers(hp, cfg=None, late_start_params: bool = False
                    ) -> Tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """(opt_G, opt_D): Adam with the lazy-regularisation correction of StyleGAN2 App. B.

  rosinality train.py: lr * c and betas ** c with c = every / (every + 1). A
  trainer builds them once and hands the pair to `init_state` and
  `make_train_step`. `late_start_params` (a method's `late_start`): one Adam
  step count per parameter, started at its first gradient (`late_start`).
  """
  def adam(every):
    c = lazy_ratio(every)
    if late_start_params:
      return optax.chain(late_start(optax.scale_by_adam(b1=hp.beta1 ** c, b2=hp.beta2 ** c,
                                                        eps=1e-8)),
                         optax.scale_by_learning_rate(hp.lr * c))
    return optax.adam(hp.lr * c, b1=hp.beta1 ** c, b2=hp.beta2 ** c, eps=1e-8)
  g_every = hp.g_reg_every if hp.pl_weight > 0 and (cfg is None or Models(cfg).has_styles) else 0
  d_every = hp.d_reg_every if hp.r1_gamma > 0 else 0
  return adam(g_every), adam(d_every)


def check_architecture(method, architecture: str):
  """A clear ConfigError when a method cannot adapt this kind of model."""
  bad = method.unsupported(architecture)
  if bad:
    ok = sorted(n for n, make in REGISTRY.items() if architecture in make().architectures)
    raise ConfigError(f'method {"+".join(bad)} cannot adapt a {architecture} model (it works on '
                      'the layers and features of a StyleGAN2); methods for a '
                      f'{architecture}: {", ".join(ok)}')


def init_state(bundle: ModelBundle, hp, method, key: jax.Array,
               images: Optional[jax.Array] = None, *, optimizers=None, run_phase=None) -> dict:
  """Builds the state for adapting `bundle` (which needs a discriminator).

  Args:
    optimizers: the trainer's (opt_G, opt_D) from `make_optimizers`, or None
      to build them here.
    run_phase: the trainer's phase runner (`engine.phases.runner`) for methods
      that train a preliminary stage in their init (AdAM's probing), called as
      run_phase(bundle, hp, images, name, method, ...); None: such methods refuse.
  """
  d_vars = bundle.require('D')
  models = Models(bundle.config)
  check_architecture(method, models.architecture)
  g_ema = bundle.nets['G_ema']
  g = bundle.nets.get('G', g_ema)
  key, mkey = jax.random.split(key)
  phase = None if run_phase is None else functools.partial(run_phase, bundle, hp, images)
  minit = method.init(InitContext(bundle, images, mkey, hp, models, run_phase=phase))
  # Copies, so no two state leaves share a buffer (the step donates its input);
  # device_put copies without compiling a program per leaf shape (jnp.array does).
  as_jnp = lambda t: jax.device_put(t, may_alias=False)  # noqa: E731
  mstate = as_jnp(minit.state)
  g_side = method.param_transform('G', as_jnp({'net': g['params'], **minit.g_extra}), mstate)
  d_side = method.param_transform('D', as_jnp({'net': d_vars['params'], **minit.d_extra}), mstate)
  opt_g, opt_d = optimizers or make_optimizers(hp, bundle.config, method.late_start)
  state = {
      'step': jnp.zeros((), jnp.int32),
      'key': key,
      'G': g_side,
      'D': d_side,
      'G_ema': as_jnp(g_ema['params']),
      'G_buffers': as_jnp(g['buffers']),
      'source_G': as_jnp(g['params']),
      # One compiled program each instead of an eager op per optimiser leaf.
      'opt_G': jax.jit(opt_g.init)(g_side),
      'opt_D': jax.jit(opt_d.init)(d_side),
      'pl_mean': jnp.zeros((), jnp.float32),
      'method': mstate,
  }
  if hp.augment == ada.POLICY:
    state['ada'] = ada.ada_init(hp.augment_p)
  return state


def _registered_method(mstates):
  """The Composite of the registered methods named in state['method'] (default
  kwargs: `Method.effective_params` may depend only on params and state)."""
  return compose(*[REGISTRY[name]() for name in mstates if name in REGISTRY])


def state_to_bundle(state: dict, bundle: ModelBundle, source: str = '',
                    method=None) -> ModelBundle:
  """The adapted networks of `state` as a ModelBundle (G_ema, G, D).

  G and D are the effective networks (`Method.effective_params`, e.g. AdAM's
  modulated kernels folded in), so the bundle is a plain StyleGAN2; G_ema
  already holds effective weights. `method` is the run's Composite; by default
  it is rebuilt from the registered method names in state['method'].
  """
  if method is None:
    method = _registered_method(state['method'])
  buffers = state['G_buffers']
  nets = {'G_ema': {'params': state['G_ema'], 'buffers': buffers},
          'G': {'params': method.effective_params('G', state['G'], state['method']),
                'buffers': buffers},
          'D': {'params': method.effective_params('D', state['D'], state['method'])}}
  return ModelBundle(config=bundle.config, nets=nets, source=source or bundle.source)
