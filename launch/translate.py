"""Translate a folder of images with a trained student (GPD, KDIT) and write the outputs.

  python launch/translate.py --student=runs/gpd_anime_sketch --input=photos/ --output=sketches/

--student is the student's training workdir or its model/ directory. Every
image of --input is center-cropped and resized to the student's resolution
(the library's one loader), translated, and written to --output as
NAME.png, NAME the input's file name without its extension.
"""
import pathlib

from absl import app, flags

from fsig_jax import api
from fsig_jax.data.images import list_image_files, load_image_files, write_image_folder
from fsig_jax.errors import FsigError
from fsig_jax.utils.cli import fail
from fsig_jax.utils.logs import quiet_logs

STUDENT = flags.DEFINE_string('student', None, 'student workdir or model/ directory',
                              required=True)
INPUT = flags.DEFINE_string('input', None, 'folder of input images', required=True)
OUTPUT = flags.DEFINE_string('output', None, 'folder for the translated images', required=True)
BATCH = flags.DEFINE_integer('batch', 32, 'images per forward pass')


def main(argv):
  del argv
  quiet_logs()
  try:
    student = api.load_student(STUDENT.value, batch_size=BATCH.value)
    files = list_image_files(pathlib.Path(INPUT.value))
    images = load_image_files(files, student.resolution, where=INPUT.value)
    paths = write_image_folder(student(images), OUTPUT.value, names=[f.stem for f in files])
  except FsigError as e:
    fail(str(e))
  print(f'wrote {len(paths)} images ({student.resolution}px) to {OUTPUT.value}')


if __name__ == '__main__':
  app.run(main)
