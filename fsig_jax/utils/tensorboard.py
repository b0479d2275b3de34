"""TensorBoard event files, written without TensorFlow.

A run's scalars and sample grids go to WORKDIR/logs/events.out.tfevents.*, the
file format TensorBoard reads (TFRecord framing of `Event` protocol buffers:
length, masked CRC-32C of the length, the record, its masked CRC-32C). The
protos and the CRC come from the `tensorboard` package, which needs no
TensorFlow; clu's SummaryWriter, which we used before, imports TensorFlow, and
that import alone took 2.5-4 s of every run's start on the 2-core CPU (`python -c
"from clu import metric_writers"`: 4.0 s; this module: 0.15 s).

Scalars are written as `simple_value` summaries and images as PNG `Summary.Image`
values, the two forms every TensorBoard version (and
`tensorboard.backend.event_processing`) reads. One file per process, opened with
a `file_version` event whose wall time marks the process start
(`engine.export.training_time` times runs from it). Each write is flushed, so
a killed run keeps everything it logged.
"""
import itertools
import os
import socket
import struct
import time
from typing import Any, Dict

import numpy as np

from fsig_jax.utils.images import png_bytes

_FILE_NUMBERS = itertools.count(1)  # two writers of one process in the same second


class EventFileWriter:
  """write_scalars / write_images / flush / close, as the run machinery calls them."""

  def __init__(self, logdir: str):
    # Imported here: the package is a dependency, but a broken install should cost
    # the TensorBoard logs (fsig_jax.run falls back to JSON lines), not the run.
    from tensorboard.compat.proto import event_pb2, summary_pb2  # pylint: disable=g-import-not-at-top
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c  # pylint: disable=g-import-not-at-top
    self._event_pb2, self._summary_pb2, self._crc = event_pb2, summary_pb2, masked_crc32c
    os.makedirs(logdir, exist_ok=True)
    name = (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.'
            f'{os.getpid()}.{next(_FILE_NUMBERS)}')
    self.path = os.path.join(logdir, name)
    self._f = open(self.path, 'ab')  # pylint: disable=consider-using-with
    self._write(event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event):
    data = event.SerializeToString()
    header = struct.pack('<Q', len(data))
    self._f.write(header + struct.pack('<I', self._crc(header)) + data +
                  struct.pack('<I', self._crc(data)))
    self._f.flush()

  def _summary(self, step: int, values):
    self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step),
                                      summary=self._summary_pb2.Summary(value=values)))

  def write_scalars(self, step: int, scalars: Dict[str, Any]):
    value = self._summary_pb2.Summary.Value
    self._summary(step, [value(tag=k, simple_value=float(v)) for k, v in scalars.items()])

  def write_images(self, step: int, images: Dict[str, Any]):
    """{tag: NHWC uint8 batch}: one image per tag and batch element (tag/i when N > 1)."""
    s = self._summary_pb2.Summary
    values = []
    for tag, batch in images.items():
      batch = np.asarray(batch)
      for i, img in enumerate(batch):
        h, w, c = img.shape
        values.append(s.Value(tag=tag if len(batch) == 1 else f'{tag}/{i}', image=s.Image(
            height=h, width=w, colorspace=c, encoded_image_string=png_bytes(img))))
    self._summary(step, values)

  def flush(self):
    self._f.flush()

  def close(self):
    self._f.close()
