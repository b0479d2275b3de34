"""KDIT part 2: SPADE-style X-to-image students (spatial and vector conditions).

"Distilling GANs with Style-Mixed Triplets for X2I Translation with Limited
Data" (KDIT, ICLR 2022), Sec. 3.3, Eqs. 6-8. No public code: every open
detail is a decision, stated here and exposed as a config field.

The student G_S(z_s, f, c) (models/students/spade_generator.py) is a SPADE
generator from its own noise z_s, into which the teacher's first-layer
feature f (our StyleGAN2's 8x8 block output `b8.conv1`; the paper's StyleGAN
v1 has 8x8x512 there) is added at the 8x8 stage through a 1x1 projection,
conditioned on c; its discriminator is conditioned on c.

Stage 1 (distillation, `config.stage = 1`), on the style-mixed triplets of
part 1 (`kdit.make_triplets`, built once and shared): x1 and y share f.
  * Vector conditions (`cond = 'vector'`, the paper's text / audio students):
    a semantic encoder S_E = the teacher discriminator without its last layer
    (its `b4.fc` features), initialised from it and trained with the student,
    gives pseudo-conditions c_x = S_E(x1), c_y = S_E(y). Eq. 6: per level L1
    between the student's block outputs and the teacher generator's of the
    same size (1x1 projections on the student side, as part 1) with alpha =
    0.1, and the output L1 with beta = 0.1, on both (x1, c_x) and (y, c_y);
    Eq. 7, the semantic diversity loss -|G_S(z_s, f, c_x) - G_S(z_s, f, c_y)|
    (mean L1) with lambda_srl = 0.1 (`kdit.lambda_srl = 0`: the paper's
    double-dagger row); lambda_adv = lambda_kdl = 1.
  * Spatial conditions (`cond = 'spatial'`, segmentation-to-image): the
    conditional branch is not distilled: c = 1 in G and 0 in D (the paper's
    dagger row), targets x1 only, no diversity loss.
  The adversarial loss is SPADE's hinge loss (its default gan_mode), with the
  teacher's images as the real data.
Stage 2 (`config.stage = 2`; `init` a stage-1 workdir, or '' from scratch):
fine-tune on the limited real pairs (condition, image) without the teacher
feature (f = None: the paper's footnote), SPADE's recipe: hinge GAN loss plus
a perceptual loss weighted 10 (SPADE: VGG19, five layers; here VGG16 relu2_2
of losses/perceptual.py: a deviation), TTUR Adam (G 1e-4, D 4e-4, betas
(0, 0.9); SPADE's defaults with --no_TTUR off). SPADE's discriminator
feature-matching loss is left out (our PatchGAN exposes no features; a
deviation). Vector conditions in stage 2 are the pooled VGG16 features of
the paired image (an analogue of a text embedding, 512-d), mapped to the
student's condition width by a trainable linear layer (`cond_in`, the stand-in
for a text encoder) when the widths differ.

State: step, key, params and Adam states of G (and S_E, projections in stage
1; cond_in in stage 2) and D. The teacher is a frozen input of the step.
"""
import logging
from typing import Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from fsig_jax.convert.load import load_model, load_model_dir
from fsig_jax.data.pairs import load_pairs
from fsig_jax.distill import kdit
from fsig_jax.engine import parallel
from fsig_jax.errors import ConfigError, DataError
from fsig_jax.losses import perceptual
from fsig_jax.metrics import lpips
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.functional import Models
from fsig_jax.models.students import spade_generator as sgen
from fsig_jax.run import Run, host, run_fields

log = logging.getLogger('fsig_jax')

CONDS = ('spatial', 'vector')
F_KEY = 'b8.conv1'  # the teacher's 8x8 block output: f


def default_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = 'kdit_spade'
  c.stage = 1                     # 1: distillation from the teacher; 2: real pairs
  c.init = ''                     # stage 2: a stage-1 workdir (or '' from scratch)
  c.distilled = False             # stage 2: True requires `init` (the distilled arm)
  c.cond = 'spatial'              # 'spatial' (condition maps) or 'vector'
  c.teacher = ml_collections.ConfigDict()
  c.teacher.checkpoint = ''       # the StyleGAN2 teacher (stage 1; needs D)
  c.teacher.inject_index = 4      # the triplets of part 1
  c.teacher.truncation = 1.0
  c.student = ml_collections.ConfigDict({'z_dim': 256, 'nf': 64, 'max_channels': 1024,
                                         'spade_hidden': 128})
  c.student.ndf = 64
  c.kdit = ml_collections.ConfigDict()
  c.kdit.alpha = 0.1              # Eq. 6, per level
  c.kdit.beta = 0.1               # Eq. 6, output
  c.kdit.lambda_srl = 0.1         # Eq. 7 (vector only; 0: the double-dagger row)
  c.kdit.lambda_adv = 1.0
  c.kdit.lambda_kdl = 1.0
  c.data = ml_collections.ConfigDict()
  c.data.pairs = 'derived:anime_sketch'  # stage 2: (condition image, target image) pairs
  c.data.train_pairs = 500
  c.data.swap = True              # the pair's target is the condition (sketch -> photo)
  c.data.flip = True
  c.loss = ml_collections.ConfigDict()
  c.loss.lambda_vgg = 10.0        # SPADE --lambda_vgg
  c.hparams = ml_collections.ConfigDict()
  c.hparams.batch_size = 4
  c.hparams.lr = 2e-4             # SPADE --lr; TTUR: G lr / 2, D lr * 2
  c.hparams.beta1 = 0.0           # SPADE with TTUR: betas (0, 0.9)
  c.hparams.beta2 = 0.9
  c.hparams.ttur = True
  run_fields(c, steps=20000)
  return c


def hinge_d(real, fake):
  """SPADE's hinge D loss: mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def hinge_g(fake):
  return -jnp.mean(fake)


def diversity(a, b):
  """Eq. 7's term without its weight: -mean |a - b| (minimising it pushes a, b apart)."""
  return -jnp.mean(jnp.abs(a - b))


def _opts(hp):
  g_lr, d_lr = (hp.lr / 2, hp.lr * 2) if hp.ttur else (hp.lr, hp.lr)
  return {'g': optax.adam(g_lr, b1=hp.beta1, b2=hp.beta2),
          'd': optax.adam(d_lr, b1=hp.beta1, b2=hp.beta2)}


def semantic_encoder(tmodels, d_params, x):
  """S_E(x): the teacher discriminator without its last layer (its b4.fc features)."""
  return tmodels.disc(d_params, x)[1]['b4.fc']


def student_config(config, resolution: int, cond_channels: int, teacher_channels: int):
  s = config.student.to_dict()
  s.pop('ndf', None)
  try:
    return sgen.SPADEStudentConfig.from_dict(dict(
        s, resolution=resolution, cond=config.cond, cond_channels=cond_channels,
        teacher_channels=teacher_channels))
  except (TypeError, ValueError) as e:
    raise ConfigError(f'student: {e}') from None


# ----------------------------------------------------------------------------- stage 1


def stage1_init(config, scfg, teacher: ModelBundle, key) -> dict:
  k_net, k_proj, key = jax.random.split(key, 3)
  nets = sgen.init_spade_student(scfg, k_net, ndf=config.student.ndf)
  z = jnp.zeros((1, scfg.z_dim))
  c = _const_cond(scfg, 1, 1.0)
  f = jnp.zeros((1, scfg.inject_resolution, scfg.inject_resolution, scfg.teacher_channels))
  g = sgen.SPADEStudent(scfg)
  _, sf = jax.eval_shape(lambda p: g.apply({'params': p}, z, c, f, return_features=True),
                         nets['G'])
  tf, _ = kdit.teacher_feature_shapes(teacher.config)
  sw = {'dec': {k: v.shape[-1] for k, v in sf.items()}}
  tw = {'dec': {k: v.shape[-1] for k, v in kdit.teacher_g_levels(tf).items()}}
  trainable = {'G': nets['G'], 'proj': kdit.init_projections(k_proj, sw, tw)['dec']}
  if scfg.cond == 'vector':
    trainable['S_E'] = jax.tree.map(jnp.array, teacher.nets['D']['params'])
  opts = _opts(config.hparams)
  return {'step': jnp.zeros((), jnp.int32), 'key': key, 'nets': trainable, 'D': nets['D'],
          'opt': opts['g'].init(trainable), 'opt_D': opts['d'].init(nets['D'])}


def dagger_conditions(scfg, n: int):
  """(c in G, c in D) of the spatial distillation (the paper's dagger row): the
  conditional branch is not distilled, c = 1 in G and 0 in D."""
  return _const_cond(scfg, n, 1.0), _const_cond(scfg, n, 0.0)


def _const_cond(scfg, n: int, value: float):
  if scfg.cond == 'vector':
    return jnp.full((n, scfg.cond_channels), value)
  r = scfg.resolution
  return jnp.full((n, r, r, scfg.cond_channels), value)


def make_stage1_step(config, scfg, tcfg, mesh=None):
  k, hp = config.kdit, config.hparams
  n = hp.batch_size
  G = sgen.SPADEStudent(scfg)
  D = sgen.CondDiscriminator(scfg, ndf=config.student.ndf)
  tm = Models(tcfg)
  vector = scfg.cond == 'vector'
  triplets = kdit.make_triplets(tcfg, n, config.teacher.inject_index, config.teacher.truncation,
                                triplets=vector)
  opts = _opts(hp)

  def step_fn(state, teacher_g, teacher_d):
    key, k_trip, k_z = jax.random.split(state['key'], 3)
    t, z = parallel.constrain_batch((triplets(teacher_g, k_trip),
                                     jax.random.normal(k_z, (n, scfg.z_dim))), mesh)
    f = t['x1_feats'][F_KEY]
    targets = [(t['x1'], kdit.teacher_g_levels(t['x1_feats']))]
    if vector:
      targets.append((t['y'], kdit.teacher_g_levels(t['y_feats'])))

    def conds(q, for_d: bool):
      if not vector:
        return [dagger_conditions(scfg, n)[1 if for_d else 0]] * len(targets)
      return [semantic_encoder(tm, q['S_E'], img) for img, _ in targets]

    p = state['nets']
    c_g = conds(p, False)
    fakes = [jax.lax.stop_gradient(G.apply({'params': p['G']}, z, c, f)) for c in c_g]
    c_d = [jax.lax.stop_gradient(c) for c in (c_g if vector else conds(p, True))]

    def d_loss(dp):
      real = sum(hinge_d(D.apply({'params': dp}, img, c), D.apply({'params': dp}, fk, c))
                 for (img, _), fk, c in zip(targets, fakes, c_d)) / len(targets)
      return real

    d_val, grads = jax.value_and_grad(d_loss)(state['D'])
    upd, opt_d = opts['d'].update(grads, state['opt_D'], state['D'])
    d_params = optax.apply_updates(state['D'], upd)

    def g_loss(q):
      cs = conds(q, False)
      cd = cs if vector else conds(q, True)
      outs, terms = [], {'adv': 0.0, 'feat': 0.0, 'out': 0.0}
      for (img, tg), c, c_disc in zip(targets, cs, cd):
        out, feats = G.apply({'params': q['G']}, z, c, f, return_features=True)
        outs.append(out)
        terms['adv'] += hinge_g(D.apply({'params': d_params}, out, jax.lax.stop_gradient(c_disc)))
        terms['feat'] += kdit.aligned_l1(q['proj'], feats, tg)
        terms['out'] += jnp.mean(jnp.abs(out - img))
      terms['kd'] = k.alpha * terms['feat'] + k.beta * terms['out']
      total = k.lambda_adv * terms['adv'] + k.lambda_kdl * terms['kd']
      if vector:
        terms['div'] = diversity(outs[0], outs[1])
        total = total + k.lambda_srl * terms['div']
      return total, terms

    (_, g_metrics), grads = jax.value_and_grad(g_loss, has_aux=True)(p)
    upd, opt_g = opts['g'].update(grads, state['opt'], p)
    new = {**state, 'step': state['step'] + 1, 'key': key,
           'nets': optax.apply_updates(p, upd), 'opt': opt_g, 'D': d_params, 'opt_D': opt_d}
    return new, {'d_hinge': d_val, **{f'g_{a}': b for a, b in g_metrics.items()}}
  return parallel.jit_step(step_fn, mesh, cache_as=('kdit_spade_stage1_step', {
      'config': config.to_dict(), 'student': scfg, 'teacher': tcfg}))


# ----------------------------------------------------------------------------- stage 2


VGG_EMBED = 512  # pooled VGG16 relu5_3 of the paired image (metrics/features.py)


def stage2_data(config, resolution: int):
  """(conditions, images) of the training pairs: sketch maps, or their VGG embeddings."""
  try:
    x, y = load_pairs(config.data.pairs, 'train', config.data.train_pairs, resolution)
  except DataError as e:
    raise ConfigError(f'data.pairs = {config.data.pairs!r}: {e}') from None
  cond, img = (y, x) if config.data.swap else (x, y)
  if config.cond == 'vector':
    from fsig_jax.metrics import features  # pylint: disable=g-import-not-at-top
    cond = features.extract_features(features.vgg16_features(), cond)
  return np.asarray(cond, np.float32), np.asarray(img, np.float32)


def stage2_init(config, scfg, key, init: Optional[ModelBundle], embed_dim: int) -> dict:
  k_net, k_c, key = jax.random.split(key, 3)
  nets = sgen.init_spade_student(scfg, k_net, ndf=config.student.ndf)
  if init is not None:
    g = dict(init.nets['G']['params'])
    g.pop('f_proj', None)  # no teacher feature in stage 2
    nets = {'G': g, 'D': init.nets['D']['params']}
  trainable = {'G': nets['G']}
  if scfg.cond == 'vector' and embed_dim != scfg.cond_channels:
    trainable['cond_in'] = {'kernel': jax.nn.initializers.lecun_normal()(
        k_c, (embed_dim, scfg.cond_channels)), 'bias': jnp.zeros((scfg.cond_channels,))}
  opts = _opts(config.hparams)
  trainable, d = jax.tree.map(jnp.asarray, (trainable, nets['D']))
  return {'step': jnp.zeros((), jnp.int32), 'key': key, 'nets': trainable, 'D': d,
          'opt': opts['g'].init(trainable), 'opt_D': opts['d'].init(d)}


def _cond_in(q, c):
  return c @ q['cond_in']['kernel'] + q['cond_in']['bias'] if 'cond_in' in q else c


def make_stage2_step(config, scfg, mesh=None):
  hp, L = config.hparams, config.loss
  G = sgen.SPADEStudent(scfg)
  D = sgen.CondDiscriminator(scfg, ndf=config.student.ndf)
  opts = _opts(hp)

  def step_fn(state, c, x, vgg):
    key, k_z = jax.random.split(state['key'])
    z = parallel.constrain_batch(jax.random.normal(k_z, (x.shape[0], scfg.z_dim)), mesh)
    p = state['nets']
    cg = _cond_in(p, c)
    fake = jax.lax.stop_gradient(G.apply({'params': p['G']}, z, cg))
    cd = jax.lax.stop_gradient(cg)
    d_val, grads = jax.value_and_grad(lambda dp: hinge_d(
        D.apply({'params': dp}, x, cd), D.apply({'params': dp}, fake, cd)))(state['D'])
    upd, opt_d = opts['d'].update(grads, state['opt_D'], state['D'])
    d_params = optax.apply_updates(state['D'], upd)

    def g_loss(q):
      cq = _cond_in(q, c)
      out = G.apply({'params': q['G']}, z, cq)
      adv = hinge_g(D.apply({'params': d_params}, out, cq))
      vgg_l = perceptual.perceptual_l1(vgg, out, x)
      return adv + L.lambda_vgg * vgg_l, {'adv': adv, 'vgg': vgg_l}

    (_, m), grads = jax.value_and_grad(g_loss, has_aux=True)(p)
    upd, opt_g = opts['g'].update(grads, state['opt'], p)
    new = {**state, 'step': state['step'] + 1, 'key': key, 'nets': optax.apply_updates(p, upd),
           'opt': opt_g, 'D': d_params, 'opt_D': opt_d}
    return new, {'d_hinge': d_val, **{f'g_{a}': b for a, b in m.items()}}
  return parallel.jit_step(step_fn, mesh, cache_as=('kdit_spade_stage2_step', {
      'config': config.to_dict(), 'student': scfg}))


# ----------------------------------------------------------------------------- the run


def sample_rows(config, scfg, state, teacher=None, data=None):
  """A sample grid: stage 1, the teacher's x1 over the student's G_S(z, f, c);
  stage 2, the (spatial) conditions, the student's outputs and the true images."""
  k = config.num_samples
  key = jax.random.PRNGKey(config.seed + 1)
  z = jax.random.normal(key, (k, scfg.z_dim))
  G = sgen.SPADEStudent(scfg)
  p = state['nets']
  if teacher is not None:
    tm = Models(teacher.config)
    t = kdit.make_triplets(teacher.config, k, config.teacher.inject_index,
                           config.teacher.truncation)((teacher.nets['G_ema']['params'],
                                                       teacher.nets['G_ema']['buffers']), key)
    c = (semantic_encoder(tm, p['S_E'], t['x1']) if scfg.cond == 'vector' else
         _const_cond(scfg, k, 1.0))
    out = G.apply({'params': p['G']}, z, c, t['x1_feats'][F_KEY])
    return np.concatenate([np.asarray(t['x1']), np.asarray(out)]), 'rows: teacher x1, student'
  cond, img = data
  c = jnp.asarray(cond[:k])
  out = np.asarray(G.apply({'params': p['G']}, z[:len(c)], _cond_in(p, c)))
  rows = [out, img[:k]]
  if scfg.cond == 'spatial':
    rows.insert(0, cond[:k])
  return np.concatenate(rows), 'rows: ' + ('condition, ' if scfg.cond == 'spatial' else '') + \
      'student, true image'


def _bundle(scfg, state, source: str) -> ModelBundle:
  nets = {'G': {'params': state['nets']['G']}, 'D': {'params': state['D']}}
  if 'cond_in' in state['nets']:
    nets['cond_in'] = {'params': state['nets']['cond_in']}
  return ModelBundle(config=scfg, nets=nets, source=source)


def train(config, workdir: Optional[str] = None, *, teacher: Optional[ModelBundle] = None,
          data=None, init: Optional[ModelBundle] = None, mesh=None):
  """Runs (or resumes) stage `config.stage`; returns (state, student bundle).
  `data` = (conditions, images) passes stage 2's pairs directly."""
  if config.cond not in CONDS:
    raise ConfigError(f'cond {config.cond!r}: use one of {CONDS}')
  mesh = mesh or parallel.config_mesh(config)
  parallel.check_batch(config.hparams.batch_size, mesh)
  if config.stage == 1:
    teacher = teacher or load_model(config.teacher.checkpoint, setting='teacher.checkpoint',
                                    seed=config.seed, require_discriminator=True,
                                    what='the StyleGAN2 teacher with its D')
    tcfg = teacher.config
    tgf, tdf = kdit.teacher_feature_shapes(tcfg)
    cond_ch = tdf['b4.fc'].shape[-1] if config.cond == 'vector' else 3  # S_E's output width
    scfg = student_config(config, tcfg.resolution, cond_ch, tgf[F_KEY].shape[-1])
    run = Run(config, workdir, defaults=default_config(), architecture=scfg)
    state = run.restore(parallel.replicate(
        stage1_init(config, scfg, teacher, jax.random.PRNGKey(config.seed)), mesh))
    step_fn = make_stage1_step(config, scfg, tcfg, mesh)
    args = (parallel.replicate((teacher.nets['G_ema']['params'],
                                teacher.nets['G_ema']['buffers']), mesh),
            parallel.replicate(teacher.nets['D']['params'], mesh))
    batches = lambda step: args  # noqa: E731  the teacher makes its own data
    source = f'kdit_spade stage 1 ({config.cond}) from {teacher.source}'
  elif config.stage == 2:
    if init is None and config.distilled and not config.init:
      raise ConfigError('the distilled stage 2 starts from the stage-1 student: pass '
                        '--config.init=STAGE1_WORKDIR (configs/kdit_spade.py:distill,COND)')
    if init is None and config.init:
      init = load_model_dir(config.init, arch='spade_student', setting='init',
                            what='a stage-1 workdir (or its model/)')
    res = init.config.resolution if init is not None else 64
    cond, img = data if data is not None else stage2_data(config, res)
    res = img.shape[1]
    if init is not None:
      scfg = init.config
    else:
      scfg = student_config(config, res, cond.shape[-1], 0)
    run = Run(config, workdir, defaults=default_config(), architecture=scfg)
    state = run.restore(parallel.replicate(
        stage2_init(config, scfg, jax.random.PRNGKey(config.seed), init, cond.shape[-1]), mesh))
    step_fn = make_stage2_step(config, scfg, mesh)
    vgg = parallel.replicate(lpips.vgg16_trunk(), mesh)
    bs = config.hparams.batch_size

    def batches(step):
      rng = np.random.default_rng([int(config.seed), int(step)])
      idx = rng.integers(len(img), size=bs)
      c, x = cond[idx].copy(), img[idx].copy()
      if config.data.flip and config.cond == 'spatial':
        fl = rng.random(bs) < 0.5
        c[fl], x[fl] = c[fl][:, :, ::-1], x[fl][:, :, ::-1]
      c, x = parallel.shard_batches((c, x), mesh)
      return c, x, vgg
    source = f'kdit_spade stage 2 ({config.cond}{", from stage 1" if init else ", scratch"})'
  else:
    raise ConfigError(f'stage {config.stage}: 1 (distillation) or 2 (real pairs)')
  start = run.start(state)
  log.info('%s: steps %d..%d', source, start, config.steps)
  step = start
  while step < config.steps:
    state, metrics = step_fn(state, *batches(step))
    step += 1
    run.step_done(step, metrics, state)
    if run.sample_due(step):
      rows, note = sample_rows(config, scfg, host(state), teacher if config.stage == 1 else None,
                               None if config.stage == 1 else (cond, img))
      run.grid(step, rows, config.num_samples, note)
  model = _bundle(scfg, host(state), source)
  run.export(model, {'trainer': 'kdit_spade', 'stage': config.stage, 'cond': config.cond,
                     'steps': step, 'init': config.init})
  return state, model
