"""What a trainer hands to method plug-ins: typed contexts for init, loss terms
and the state update.

These dataclasses are the whole interface between the adaptation engine and
the methods; they live with the methods so that `fsig_jax.methods` needs
nothing from `fsig_jax.engine`. `StepContext` and `UpdateContext` carry traced
values and exist only while the step is traced.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Optional

import jax

from fsig_jax.models.functional import Models

# run_phase(name, method, key, steps, data_seed, finish) -> finish(final phase state):
# trains `method` (a Composite) from `key` for `steps` steps on the target
# images (batches of hp.batch_size, horizontally flipped at random, drawn from
# `data_seed`) and returns `finish(state)` of its final train state. The
# trainer logs its progress, checkpoints it and, after a kill, resumes it where
# it stopped; a finished phase's result is saved, so a resumed run skips it.
PhaseRunner = Callable[..., Any]


@dataclasses.dataclass
class InitContext:
  """Inputs to `Method.init`: the starting model, target images and a key."""
  bundle: Any
  images: Optional[Any]
  key: jax.Array
  hp: Any
  models: Models
  run_phase: Optional[PhaseRunner] = None  # see PhaseRunner; set by the trainer


@dataclasses.dataclass
class StepContext:
  """Traced values of one step, as loss terms see them.

  In G terms `g` is the G side being differentiated and `d` is fixed; in D
  terms the reverse. Fields a phase does not compute are None. A G term may
  put arrays in `aux` (name -> array, names unique across methods): the step
  returns them, without gradient, to the methods' `update` as
  `UpdateContext.g_aux` (e.g. features to push into a queue).
  """
  phase: str                        # 'D' (main D loss), 'R1' (D regulariser) or 'G'
  step: jax.Array
  key: jax.Array                    # a key reserved for the method's own sampling
  hp: Any
  models: Models
  g: Dict[str, Any]                 # {'net': G params, **method extras}
  d: Dict[str, Any]                 # {'net': D params, **method extras}
  g_buffers: Dict[str, Any]
  source_g: Dict[str, Any]          # frozen G params at the start of adaptation
  g_ema: Any = None                 # the EMA generator after the previous step (G_M)
  real: Optional[jax.Array] = None
  extra: Optional[Dict[str, jax.Array]] = None  # batches of the methods' `data` streams
  fake: Optional[jax.Array] = None
  zs: Optional[List[jax.Array]] = None
  ws: Optional[jax.Array] = None
  noise_key: Optional[jax.Array] = None  # the key the fake batch's noise used
  g_feats: Optional[Dict[str, jax.Array]] = None
  real_logits: Optional[jax.Array] = None
  fake_logits: Optional[jax.Array] = None
  d_feats_real: Optional[Dict[str, jax.Array]] = None
  d_feats_fake: Optional[Dict[str, jax.Array]] = None
  aux: Dict[str, jax.Array] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class UpdateContext:
  """Inputs to `Method.update`, after the step's optimiser updates and EMA.

  `step` and `key` are the new state's (the step about to run next); `g`,
  `d`, `g_ema` and `g_buffers` the updated networks; `real` the batch this
  step trained on; `zs`, `ws` and `noise_key` what the G phase sampled (its
  latents, styles and noise key); `g_aux` the arrays the G terms put in
  `StepContext.aux`, without gradient.
  """
  step: jax.Array
  key: jax.Array
  hp: Any
  models: Models
  g: Dict[str, Any]
  d: Dict[str, Any]
  g_ema: Any
  g_buffers: Dict[str, Any]
  source_g: Any
  real: jax.Array
  zs: List[jax.Array]
  ws: jax.Array
  noise_key: jax.Array
  g_aux: Dict[str, jax.Array] = dataclasses.field(default_factory=dict)
