"""load_pretrained: any supported StyleGAN2 checkpoint -> ModelBundle; orbax I/O.

Formats, recognised from the file's bytes and contents (not its name):
  * rosinality/stylegan2-pytorch `.pt` (torch.save zip or legacy): training
    checkpoints with g/d/g_ema/args, or convert_weight.py outputs with g_ema,
    latent_avg and optionally d (a bare g_ema state dict works too);
  * NVIDIA stylegan2-ada-pytorch network `.pkl` (G, D, G_ema);
  * an orbax checkpoint directory written by `save_bundle` (or a training
    workdir's bundle).
No PyTorch is needed and no code embedded in a pickle is ever run.
"""
import dataclasses
import json
import os
from typing import Optional, Sequence

import jax
import numpy as np

from fsig_jax.convert import ada, rosinality
from fsig_jax.convert.torch_file import load_checkpoint
from fsig_jax.errors import CheckpointError
from fsig_jax.models.bundle import ModelBundle
from fsig_jax.models.config import StyleGAN2Config
from fsig_jax.models.progan import ProGANConfig
from fsig_jax.models.stylegan2 import Generator
from fsig_jax.utils.files import writing

BUNDLE_FORMAT = 'fsig-jax-bundle'
BUNDLE_VERSION = 1
W_AVG_SAMPLES = 10_000  # mean of mapping(z) when a checkpoint stores no w_avg


def _read_raw(path: str):
  """Loads the file's Python object with the restricted readers."""
  if os.path.isdir(path):
    raise CheckpointError(f'{path} is a directory but not an fsig-jax orbax checkpoint '
                          f'(no {BUNDLE_FORMAT} metadata inside)')
  return load_checkpoint(path)


def _mean_w(cfg: StyleGAN2Config, g_vars: dict) -> np.ndarray:
  """Mean of mapping(z) over W_AVG_SAMPLES fixed-seed z (rosinality `mean_latent`)."""
  z = jax.random.normal(jax.random.PRNGKey(0), (W_AVG_SAMPLES, cfg.z_dim))
  w = Generator(cfg).apply(g_vars, z, method=Generator.map)
  return np.asarray(w.mean(0), np.float32)


def _from_official(path: str) -> ModelBundle:
  obj = _read_raw(path)
  if isinstance(obj, dict) and 'style.1.weight' in obj:
    obj = {'g_ema': obj}  # a bare generator state dict
  if isinstance(obj, dict) and isinstance(obj.get('g_ema'), dict):
    cfg, nets, w_avg = rosinality.convert(obj, path)
    fmt = 'rosinality'
  elif isinstance(obj, dict) and (obj.get('G_ema') is not None or obj.get('G') is not None):
    cfg, nets, w_avg = ada.convert(obj, path)
    fmt = 'stylegan2-ada-pytorch'
  else:
    keys = sorted(obj)[:12] if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(
        f'{path}: not a StyleGAN2 checkpoint (top level: {keys}); expected a rosinality '
        'dict with g_ema (and d), or an ada-pytorch pickle with G_ema and D')
  for name in ('G_ema', 'G'):
    if name in nets:
      buffers = nets[name]['buffers']
      if 'w_avg' not in buffers:
        buffers['w_avg'] = w_avg if w_avg is not None else _mean_w(
            cfg, {'params': nets[name]['params'],
                  'buffers': {**buffers, 'w_avg': np.zeros(cfg.w_dim, np.float32)}})
  return ModelBundle(config=cfg, nets=nets, source=f'{fmt}:{os.path.abspath(path)}')


def save_bundle(bundle: ModelBundle, path: str, overwrite: bool = False,
                float16: Sequence[str] = ()) -> str:
  """Writes `bundle` as an orbax checkpoint directory (atomic commit).

  `float16` names nets whose float32 arrays are stored as float16 to halve
  their size (the shipped anime64 model stores its D so; `load_bundle` reads
  them back as float32, so only the fp16 rounding of the stored values differs).
  """
  unknown = sorted(set(float16) - set(bundle.nets))
  if unknown:
    raise ValueError(f'float16={unknown}: the bundle has no such nets (it has '
                     f'{sorted(bundle.nets)})')
  import orbax.checkpoint as ocp  # heavy import, only when writing
  path = os.path.abspath(path)
  if os.path.exists(path):
    if not overwrite:
      raise FileExistsError(f'{path} exists; pass overwrite=True (CLI: --overwrite)')
    import shutil
    shutil.rmtree(path)
  meta = {'format': BUNDLE_FORMAT, 'version': BUNDLE_VERSION,
          'arch': getattr(bundle.config, 'arch', 'stylegan2'),
          'config': dataclasses.asdict(bundle.config), 'source': bundle.source,
          'float16': sorted(float16)}
  nets = {name: jax.tree.map(_half if name in float16 else np.asarray, net)
          for name, net in bundle.nets.items()}
  with writing(path), ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    ckptr.save(path, ocp.args.Composite(nets=ocp.args.StandardSave(nets),
                                        meta=ocp.args.JsonSave(meta)))
  return path


def _half(x) -> np.ndarray:
  """float32 -> float16 for storage; refuses values float16 cannot hold."""
  x = np.asarray(x)
  if x.dtype != np.float32:
    return x
  if np.abs(x).max(initial=0) > np.finfo(np.float16).max:
    raise ValueError('a weight exceeds the float16 range; store this net as float32')
  return x.astype(np.float16)


def _is_bundle_dir(path: str) -> bool:
  return os.path.isdir(path) and os.path.isfile(os.path.join(path, 'meta', 'metadata'))


def load_bundle(path: str) -> ModelBundle:
  """Reads a directory written by `save_bundle`."""
  import orbax.checkpoint as ocp
  path = os.path.abspath(path)
  try:
    with open(os.path.join(path, 'meta', 'metadata')) as f:
      meta = json.load(f)
  except (OSError, ValueError) as e:
    raise CheckpointError(f'{path}: unreadable fsig-jax checkpoint metadata ({e})') from e
  if meta.get('format') != BUNDLE_FORMAT:
    raise CheckpointError(f'{path}: not an fsig-jax model checkpoint (format '
                          f'{meta.get("format")!r})')
  if meta.get('version', 0) > BUNDLE_VERSION:
    raise CheckpointError(f'{path}: written by a newer fsig-jax (bundle version '
                          f'{meta["version"]}); upgrade fsig-jax')
  from fsig_jax.models import students  # pylint: disable=g-import-not-at-top
  configs = {'stylegan2': StyleGAN2Config, 'progan': ProGANConfig, **students.CONFIGS}
  config_cls = configs.get(meta.get('arch', 'stylegan2'))
  if config_cls is None:
    raise CheckpointError(f'{path}: unknown architecture {meta.get("arch")!r} (this fsig-jax '
                          f'reads {", ".join(sorted(configs))}); upgrade fsig-jax')
  cfg = config_cls.from_dict({k: tuple(v) if isinstance(v, list) else v
                              for k, v in meta['config'].items()})
  with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
    restored = ckptr.restore(path, ocp.args.Composite(nets=ocp.args.StandardRestore()))
  # float16-stored nets come back as float32 (the networks compute in float32).
  nets = jax.tree.map(lambda x: np.asarray(x, np.float32) if np.asarray(x).dtype == np.float16
                      else np.asarray(x), restored['nets'])
  return ModelBundle(config=cfg, nets=nets, source=meta.get('source') or f'orbax:{path}')


def load_pretrained(path: str, *, require_discriminator: bool = False,
                    resolution: Optional[int] = None) -> ModelBundle:
  """Loads a rosinality .pt, an ada-pytorch .pkl or an fsig-jax orbax checkpoint.

  Args:
    path: the checkpoint file or orbax directory.
    require_discriminator: raise a clear error now if the file has no D.
    resolution: if given, raise a clear error when the model's differs.
  """
  path = os.fspath(path)
  bundle = load_bundle(path) if _is_bundle_dir(path) else _from_official(path)
  if require_discriminator:
    bundle.require('D')
  if resolution is not None and bundle.config.resolution != resolution:
    raise CheckpointError(
        f'{path}: the model is {bundle.config.resolution}x{bundle.config.resolution}, '
        f'but {resolution}x{resolution} was asked for; use a checkpoint of that '
        'resolution or change the config\'s resolution')
  return bundle


def load_model(spec: str, *, setting: str, seed: int = 0, require_discriminator: bool = False,
               what: str = 'the source generator (e.g. models/anime64, a rosinality .pt or an '
               'ada-pytorch .pkl)') -> ModelBundle:
  """A model named by a config setting: a checkpoint (`load_pretrained`), or
  'random:SPEC' (a randomly initialised network from PRNGKey(seed), for tests
  and smoke runs; models/presets.py). Errors are ConfigErrors naming `setting`."""
  from fsig_jax.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from fsig_jax.models import presets  # pylint: disable=g-import-not-at-top
  from fsig_jax.models.bundle import init_bundle  # pylint: disable=g-import-not-at-top
  if not spec:
    raise ConfigError(f'{setting} is empty: set it to {what}')
  if spec.startswith('random:'):
    try:
      cfg = presets.parse_random_spec(spec)
    except ValueError as e:
      raise ConfigError(f'{setting}: {e}') from None
    return init_bundle(cfg, jax.random.PRNGKey(seed), source=spec)
  if not os.path.exists(spec):
    raise ConfigError(f'{setting} {spec!r} does not exist: pass {what}')
  return load_pretrained(spec, require_discriminator=require_discriminator)


def load_model_dir(path: str, *, arch: Optional[str] = None, setting: str = 'the path',
                   what: str = 'a training workdir or its model/ directory') -> ModelBundle:
  """The exported model of a workdir (WORKDIR/model) or a model directory; with
  `arch`, a CheckpointError unless it holds that architecture (a student's)."""
  path = os.fspath(path)
  model = os.path.join(path, 'model') if os.path.isdir(os.path.join(path, 'model')) else path
  if not os.path.isdir(model):
    raise CheckpointError(f'{setting} {path!r} does not exist: pass {what}')
  bundle = load_bundle(model)
  found = getattr(bundle.config, 'arch', 'stylegan2')
  if arch is not None and found != arch:
    raise CheckpointError(f'{setting} {path!r} holds a {found} model, not a {arch} one: '
                          f'pass {what}')
  return bundle
