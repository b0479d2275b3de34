"""The one jit-compiled adaptation step: D update, lazy R1, G update, lazy path
length, EMA and the method update, following rosinality/stylegan2-pytorch
train.py (the base of CDC, DCL, RICK and AdAM) phase by phase.

Methods add loss terms, transform gradients and params, may re-parameterise
the weights the networks see (`effective_params`), and carry state (see
`fsig_jax.methods.base`); the step logs every term by name. With a mesh, the
state is replicated and the batch sharded over all devices; the computation is
the same global-batch computation as on one device.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from fsig_jax.data import ada
from fsig_jax.data.augment import diff_augment
from fsig_jax.engine import parallel
from fsig_jax.engine.run_config import ConfigError
from fsig_jax.engine.state import make_optimizers
from fsig_jax.losses.adversarial import d_logistic, g_nonsaturating, wgan_d, wgan_g
from fsig_jax.losses.regularizers import gradient_penalty, path_length_penalty, r1_penalty
from fsig_jax.methods.context import StepContext, UpdateContext
from fsig_jax.models.functional import Models
from fsig_jax.utils import executable_cache
from fsig_jax.utils.trees import ema

# The step's random draws, one key each, split from state['key'] in this order
# (the order is part of the run: a resumed or repeated run draws the same).
KEYS = ('next',                        # the next step's state['key']
        'd_z', 'd_noise', 'd_method',  # D phase: latents, noise, method's own draws
        'd_aug_real', 'd_aug_fake',    # D phase: augmentation of reals / fakes
        'r1_aug',                      # R1: augmentation of the reals (DiffAugment;
                                       # ADA's R1 reuses D's augmented reals)
        'g_z', 'g_noise', 'g_method', 'g_aug',  # G phase
        'pl_z', 'pl_noise', 'pl_proj')  # path length: latents, noise, projection


def _total(terms):
  return functools.reduce(jnp.add, terms.values())


def make_train_step(cfg, hp, method, mesh=None, donate: bool = True, optimizers=None,
                    cache_as=None):
  """Returns step(state, real, extra=None) -> (state, metrics), jit-compiled once.

  `real` is the target batch; `extra` the batches of the methods' own image
  streams ({name: batch}, `Method.data`; see `engine.batches`), or None.

  Args:
    cfg: the StyleGAN2Config.
    hp: hyper-parameters (see `engine.hparams.default_hparams`).
    method: a `methods.base.Composite`.
    mesh: optional device mesh (engine.parallel.make_mesh) for data parallelism.
    donate: donate the input state's buffers (saves memory; the caller must
      not reuse the state it passed in).
    optimizers: the trainer's (opt_G, opt_D) (`state.make_optimizers`), or
      None to build them here.
    cache_as: a JSON-able description of `method` (its names and kwargs, from
      which it was built), or None. With it the compiled step is kept in and
      loaded from `utils.executable_cache` under a key of the code, cfg, hp,
      this description, the mesh, donation and the arguments' types, so a
      second run of the same config skips tracing (`engine.loop.train` passes
      it). `optimizers` must then be the ones `make_optimizers` builds from
      hp, cfg and the method (as the trainer's are).
  """
  try:
    models = Models(cfg, hp.get('compute_dtype', 'float32'))
  except ValueError as e:
    raise ConfigError(f'hparams.{e}') from None
  if hp.loss not in ('logistic', 'wgan_gp'):
    raise ValueError(f"hparams.loss must be 'logistic' or 'wgan_gp', got {hp.loss!r}")
  wgan = hp.loss == 'wgan_gp'
  opt_g, opt_d = optimizers or make_optimizers(hp, cfg, method.late_start)
  disc_owner, disc_hook = method.hook('disc')
  z_owner, z_hook = method.hook('sample_z')
  signs_owner, signs_hook = method.hook('ada_signs')
  batch = hp.batch_size
  pl_batch = max(1, batch // hp.pl_batch_shrink)
  shard = (lambda x: jax.lax.with_sharding_constraint(x, parallel.batch_sharding(mesh))) \
      if mesh is not None else (lambda x: x)

  def apply(opt, side, grads, opt_state, params, mst):
    """One optimiser update of a side, with the method's masks and transforms.

    The grad transform is applied to the gradients and again to the Adam
    updates, so a mask freezes exactly even when Adam carries momentum.
    """
    grads = method.grad_transform(side, grads, params, mst)
    updates, opt_state = opt.update(grads, opt_state, params)
    updates = method.grad_transform(side, updates, params, mst)
    params = method.param_transform(side, optax.apply_updates(params, updates), mst)
    return params, opt_state

  use_ada = hp.augment == ada.POLICY
  adaptive = use_ada and hp.augment_p == 0  # CDC train.py:239: a fixed p when > 0

  def augment(x, key, ada_p=None):
    """hp.augment's augmentation of a batch D sees: ADA at probability ada_p (the
    state's), a DiffAugment policy, or none."""
    if use_ada:
      return ada.augment(x, key, ada_p)
    return diff_augment(x, key, hp.augment, p=hp.augment_p) if hp.augment else x

  def disc(ctx, d_side, img, mstates):
    if disc_hook is not None:
      return disc_hook(ctx, d_side, img, mstates[disc_owner])
    return models.disc(d_side['net'], img)

  def sample_ws(g_net, buffers, key, n, step, mstates, use_hook=True):
    """Latents -> styles with mixing; returns (zs, ws, w of the first z).

    Path length always uses plain mixing latents (rosinality/CDC `mixing_noise`),
    so it passes use_hook=False.
    """
    kz1, kz2, kmix = jax.random.split(key, 3)
    zs = None
    if z_hook is not None and use_hook:
      zs = z_hook(kz1, step, mstates[z_owner], n)
    if zs is None:
      zs = [shard(jax.random.normal(kz1, (n, cfg.z_dim)))]
      if hp.mixing_prob > 0:
        zs.append(shard(jax.random.normal(kz2, (n, cfg.z_dim))))
    w = [models.map(g_net, buffers, z) for z in zs]
    ws = models.broadcast(w[0]) if len(w) == 1 else models.mix(w[0], w[1], kmix, hp.mixing_prob)
    return zs, ws, w[0]

  def train_step(state, real, extra=None):
    keys = dict(zip(KEYS, jax.random.split(state['key'], len(KEYS))))
    step, mst = state['step'], state['method']
    g_side, d_side, buffers = state['G'], state['D'], state['G_buffers']
    real = shard(real)
    extra = jax.tree.map(shard, extra)
    base = dict(step=step, hp=hp, models=models, g_buffers=buffers,
                source_g=state['source_G'], g_ema=state['G_ema'], real=real, extra=extra)

    def eff(side, params):
      """A side as the networks and method hooks see it: 'net' replaced by the
      method's `effective_params` (the identity unless a method such as AdAM
      re-parameterises the weights); differentiable in `params`."""
      return {**params, 'net': method.effective_params(side, params, mst)}

    # --- D: logistic loss on real vs G(z) (+ method terms).
    g_eff = eff('G', g_side)
    zs, ws, _ = sample_ws(g_eff['net'], buffers, keys['d_z'], batch, step, mst)
    fake = jax.lax.stop_gradient(models.synth(g_eff['net'], buffers, ws, keys['d_noise']))
    # D's reals and fakes, augmented at the state's p (CDC train.py:218-220).
    ada_state = state.get('ada')
    if use_ada and ada_state is None:
      raise ConfigError("hparams.augment='ada' needs the ADA state: build the state with "
                        'init_state(..., hp) from the same hparams')
    ada_p = ada_state['p'] if use_ada else None
    real_aug = augment(real, keys['d_aug_real'], ada_p)
    fake_aug = augment(fake, keys['d_aug_fake'], ada_p)

    def d_loss(d_side):
      d_side = eff('D', d_side)
      ctx = StepContext(phase='D', key=keys['d_method'], g=g_eff, d=d_side, fake=fake, zs=zs,
                        ws=ws, noise_key=keys['d_noise'], **base)
      # Independent method keys for the real and the fake pass (CDC draws p_ind twice).
      real_ctx = dataclasses.replace(ctx, key=jax.random.fold_in(keys['d_method'], 0))
      ctx.real_logits, ctx.d_feats_real = disc(real_ctx, d_side, real_aug, mst)
      # ADA's sign statistic of these predictions (CDC train.py:240-241).
      signs = jnp.zeros(())
      if adaptive:
        signs = (signs_hook(real_ctx, ctx.real_logits, mst[signs_owner]) if signs_hook
                 else jnp.sum(jnp.sign(ctx.real_logits)))
      ctx.fake_logits, ctx.d_feats_fake = disc(
          dataclasses.replace(ctx, key=jax.random.fold_in(keys['d_method'], 1)), d_side,
          fake_aug, mst)
      if wgan:  # ProGAN: critic loss + drift, gradient penalty at every step
        terms = {'d_adv': wgan_d(ctx.real_logits, ctx.fake_logits, hp.drift)}
        if hp.gp_weight > 0:
          critic = lambda x: disc(ctx, d_side, x, mst)[0]  # noqa: E731
          terms['d_gp'] = hp.gp_weight * gradient_penalty(
              critic, real_aug, fake_aug, jax.random.fold_in(keys['d_method'], 2))
      else:
        terms = {'d_adv': d_logistic(ctx.real_logits, ctx.fake_logits)}
      terms.update(method.d_terms(ctx, mst))
      return _total(terms), (terms, ctx.real_logits, ctx.fake_logits,
                             jax.lax.stop_gradient(signs))

    (_, (d_terms, real_logits, fake_logits, signs)), grads = jax.value_and_grad(
        d_loss, has_aux=True)(d_side)
    d_side, opt_d_state = apply(opt_d, 'D', grads, state['opt_D'], d_side, mst)
    if adaptive:  # CDC train.py:239-258, on the global batch's real logits
      ada_state = ada.ada_update(ada_state, signs, real_logits.shape[0], hp.ada_target,
                                 hp.ada_length)

    # --- D regularisation: lazy R1 every d_reg_every steps, its own Adam step.
    r1 = jnp.zeros(())
    if hp.r1_gamma > 0 and hp.d_reg_every > 0:
      def r1_update(carry):
        d_side, opt_state = carry

        def loss(d_side):
          d_side = eff('D', d_side)
          ctx = StepContext(phase='R1', key=keys['d_method'], g=g_eff, d=d_side, **base)
          if use_ada:  # CDC train.py:263-269: R1 at D's augmented reals
            pen = r1_penalty(lambda x: disc(ctx, d_side, x, mst)[0], real_aug)
          else:
            fn = lambda x: disc(ctx, d_side, augment(x, keys['r1_aug']), mst)[0]  # noqa: E731
            pen = r1_penalty(fn, real)
          return hp.r1_gamma / 2 * pen * hp.d_reg_every, pen

        (_, pen), g = jax.value_and_grad(loss, has_aux=True)(d_side)
        d_side, opt_state = apply(opt_d, 'D', g, opt_state, d_side, mst)
        return (d_side, opt_state), pen

      (d_side, opt_d_state), r1 = jax.lax.cond(
          step % hp.d_reg_every == 0, r1_update,
          lambda c: (c, jnp.zeros(())), (d_side, opt_d_state))

    # --- G: non-saturating loss (+ method terms).
    d_eff = eff('D', d_side)

    def g_loss(g_side):
      g_side = eff('G', g_side)
      zs, ws, w0 = sample_ws(g_side['net'], buffers, keys['g_z'], batch, step, mst)
      fake, g_feats = models.synth(g_side['net'], buffers, ws, keys['g_noise'],
                                   return_features=True)
      ctx = StepContext(phase='G', key=keys['g_method'], g=g_side, d=d_eff, fake=fake, zs=zs,
                        ws=ws, noise_key=keys['g_noise'], g_feats=g_feats, **base)
      # G's fakes at the p after this step's update (CDC train.py:290-291).
      ctx.fake_logits, ctx.d_feats_fake = disc(
          ctx, d_eff, augment(fake, keys['g_aug'], ada_state['p'] if use_ada else None), mst)
      terms = {'g_adv': wgan_g(ctx.fake_logits) if wgan else g_nonsaturating(ctx.fake_logits)}
      terms.update(method.g_terms(ctx, mst))
      sampled = jax.lax.stop_gradient((zs, ws, w0, ctx.aux))
      return _total(terms), (terms, sampled)

    (_, (g_terms, (g_zs, g_ws, w0, g_aux))), grads = jax.value_and_grad(
        g_loss, has_aux=True)(g_side)
    g_side, opt_g_state = apply(opt_g, 'G', grads, state['opt_G'], g_side, mst)

    # --- G regularisation: lazy path length every g_reg_every steps.
    pl, pl_mean = jnp.zeros(()), state['pl_mean']
    if hp.pl_weight > 0 and hp.g_reg_every > 0 and models.has_styles:
      def pl_update(carry):
        g_side, opt_state, pl_mean = carry

        def loss(g_side):
          g_side = eff('G', g_side)
          _, ws, _ = sample_ws(g_side['net'], buffers, keys['pl_z'], pl_batch, step, mst,
                               use_hook=False)
          synth = lambda ws: models.synth(g_side['net'], buffers, ws, keys['pl_noise'])  # noqa: E731
          pen, new_mean, _ = path_length_penalty(synth, ws, keys['pl_proj'], pl_mean,
                                                 hp.pl_decay)
          return hp.pl_weight * hp.g_reg_every * pen, (pen, new_mean)

        (_, (pen, new_mean)), g = jax.value_and_grad(loss, has_aux=True)(g_side)
        g_side, opt_state = apply(opt_g, 'G', g, opt_state, g_side, mst)
        return (g_side, opt_state, new_mean), pen

      (g_side, opt_g_state, pl_mean), pl = jax.lax.cond(
          (step % hp.g_reg_every == 0) & method.g_reg_active(mst), pl_update,
          lambda c: (c, jnp.zeros(())), (g_side, opt_g_state, pl_mean))

    # --- EMA of G (rosinality `accumulate`) and w_avg tracking (ada-pytorch).
    # The EMA is of the effective weights, so G_ema is always a plain StyleGAN2.
    g_ema = ema(state['G_ema'], method.effective_params('G', g_side, mst), hp.ema_beta)
    w_mean = jnp.mean(jax.lax.stop_gradient(w0), axis=0)
    buffers = {**buffers, 'w_avg': w_mean + (buffers['w_avg'] - w_mean) * hp.w_avg_beta}

    new_state = {**state, 'step': step + 1, 'key': keys['next'], 'G': g_side, 'D': d_side,
                 'G_ema': g_ema, 'G_buffers': buffers, 'opt_G': opt_g_state,
                 'opt_D': opt_d_state, 'pl_mean': pl_mean}
    new_mst = method.update(UpdateContext(
        step=new_state['step'], key=keys['next'], hp=hp, models=models, g=g_side, d=d_side,
        g_ema=g_ema, g_buffers=buffers, source_g=state['source_G'], real=real, zs=g_zs,
        ws=g_ws, noise_key=keys['g_noise'], g_aux=g_aux), mst)
    # A method update may change masks (RICK prunes at a re-estimate): keep the
    # trained params consistent with the new method state at once.
    new_state['G'] = method.param_transform('G', new_state['G'], new_mst)
    new_state['D'] = method.param_transform('D', new_state['D'], new_mst)
    new_state['method'] = new_mst
    metrics = {**d_terms, **g_terms, 'r1': r1, 'pl': pl, 'pl_mean': pl_mean,
               'real_score': jnp.mean(real_logits), 'fake_score': jnp.mean(fake_logits)}
    if use_ada:  # CDC logs "Augment" and "Rt" (train.py:407-408)
      new_state['ada'] = ada_state
      metrics.update(ada_p=ada_state['p'], ada_r_t=ada_state['r_t'])
    return new_state, metrics

  kwargs = {'donate_argnums': 0} if donate else {}
  if mesh is None:
    step = jax.jit(train_step, **kwargs)
  else:
    repl, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)
    step = jax.jit(train_step, in_shardings=(repl, data, data), out_shardings=(repl, repl),
                   **kwargs)
  if mesh is None and cache_as is None:
    return step
  if cache_as is not None:
    hooks = [f for m in method.methods for f in vars(m).values() if callable(f)]
    step = executable_cache.CachedJit(
        step, 'train_step',
        {'cfg': repr(cfg), 'hp': hp.to_dict(), 'method': cache_as,
         'mesh': executable_cache.mesh_description(mesh),
         'donate': donate},
        code_files=executable_cache.outside_files(hooks))

  # jit with in_shardings (and a compiled program) needs every argument positional
  # (keyword ones are refused), so callers may omit `extra` and the wrapper passes it on.
  def positional_step(state, real, extra=None):
    return step(state, real, extra)

  positional_step.lower = lambda state, real, extra=None: step.lower(state, real, extra)
  positional_step.programs = step
  return positional_step
