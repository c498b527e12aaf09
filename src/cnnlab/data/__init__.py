"""Data sets, image folders that never crash, a decode-once cache, augmentation on the device.

The API the trainer uses::

    from cnnlab.data import open_dataset, split_train_val, apply_split, BatchLoader, Augment

    train = open_dataset("shapes")                     # or mnist, fashion-mnist, cifar10, cifar100,
                                                       # a class-per-folder dir, a .tar.gz of one, a CSV
    train, val, record = split_train_val(train, 0.2, seed=0)   # save `record` (JSON) in the run
    train, val = apply_split(open_dataset("shapes"), record)   # resume / evaluate: same split
    aug = Augment.from_config({"rotation_range": 10, "horizontal_flip": True})
    loader = BatchLoader(train, 64, shuffle=True, seed=0, device="cpu", augment=aug)
    pre = loader.preprocessing                          # save in model.json; predict: prepare_images
    loader.set_epoch(k)                                 # resume at epoch k: same batches as uninterrupted
    for x, y in loader: ...                             # x float32 (B, C, H, W), y int64 / float32 (B,)

- :class:`ImageSet`: images ``(N, H, W, C)`` uint8 (memmap of the cache or in memory),
  ``targets`` (int64 class indices / float32 numbers), ``classes`` (None for
  regression), ``task``, ``files`` (paths relative to the folder / CSV; None for
  built-in sets), ``skipped`` ``[(path, reason)]``, ``empty_classes``,
  ``len()``, ``subset(indices)``, ``gather(indices)``, ``image_shape`` (H, W, C).
- :func:`open_dataset` ``(source, *, split="train"|"test"|"val", root=None,
  image_size=None, channels=None, task=None, download=False)``. Data root: ``root``,
  else ``$CNNLAB_DATA``, else ``~/.cache/cnnlab``. Missing built-in files raise
  :class:`~cnnlab.errors.CnnlabError` saying where to put them; ``download=True``
  (or :func:`download`) fetches them (official URLs, sha256, atomic writes).
  :func:`available_splits` tells whether a folder has an explicit ``val/`` folder
  (which then wins over a random split).
- :func:`split_train_val` ``(imageset, fraction, seed) -> (train, val, record)``,
  stratified per class; :func:`apply_split` ``(imageset, record) -> (train, val)``.
- :class:`BatchLoader` ``(imageset, batch_size, *, shuffle, seed, device,
  augment=None, drop_last=False, preprocessing=None, rank=0, world_size=1)``:
  ``len(loader)`` batches per epoch, ``set_epoch(k)``, ``iter_epoch(k, start_batch=0)``,
  ``loader.preprocessing``. Normalisation: ``x = u8 / 255`` (Keras ``rescale``
  changes the factor), then ``(x - mean) / std`` per channel when the
  preprocessing dict has them (:func:`make_preprocessing` with ``standardize=True``).
  :func:`prepare_images` applies a saved preprocessing dict to files at predict time.
- :class:`Augment`: Keras ``ImageDataGenerator`` names (rotation_range,
  width_shift_range, height_shift_range, shear_range, zoom_range,
  horizontal_flip, vertical_flip, brightness_range, rescale, fill_mode, cval) plus
  ``crop_padding`` and ``cutout``; ``Augment.from_config(dict)``; deterministic given a generator.

Decoding rules for files (EXIF, transparency over white, 16-bit, resize) are in
:mod:`cnnlab.data.decode`; what a folder may contain in :mod:`cnnlab.data.folders`.
"""

from __future__ import annotations

from cnnlab.data.augment import Augment
from cnnlab.data.decode import BadImage, decode_image
from cnnlab.data.remote import download
from cnnlab.data.folders import DataWarning
from cnnlab.data.imageset import ImageSet
from cnnlab.data.loader import BatchLoader, make_preprocessing, normalize, prepare_images
from cnnlab.data.roots import cache_dir, data_root
from cnnlab.data.sources import BUILTIN, available_splits, open_dataset
from cnnlab.data.split import apply_split, split_train_val

__all__ = [
    "BUILTIN",
    "Augment",
    "BadImage",
    "BatchLoader",
    "DataWarning",
    "ImageSet",
    "apply_split",
    "available_splits",
    "cache_dir",
    "data_root",
    "decode_image",
    "download",
    "make_preprocessing",
    "normalize",
    "open_dataset",
    "prepare_images",
    "split_train_val",
]
