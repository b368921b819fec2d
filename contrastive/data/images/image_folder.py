"""Your own images: a folder laid out as `root/<class>/<image>` (or unlabelled `root/<image>`), or a file list;
indexed without decoding, decoded in the loader workers, where a bad file is skipped and replaced."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import hydra
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from contrastive.data.images.base import ViewDataModule, split_indices
from contrastive.data.images.defaults import (
    ImageFacts,
    choose_recipe,
    held_out_share,
    loader_workers,
    peek_files,
    recipe_config,
    view_size,
)
from contrastive.data.images.fast_decode import (
    BAD_IMAGE_ERRORS,
    CropFirstViews,
    describe,
    load_rgb,
)
from contrastive.data.images.folder_index import FileIndex, read_file_list, scan_folder
from contrastive.data.images.transforms import check_size, plain_transform

WARN_FIRST = 5  # unreadable files warned about one by one per loader process; the rest are counted


class FolderImages(Dataset):
    """Items `(*load(path), label[, position])` for the index positions `positions`. A file that cannot be
    decoded is flagged in `bad` (shared with the loader workers) and replaced by the next readable one of the
    same split, so batches stay full and a resumed run reads the same images; `on_bad="error"` raises instead."""

    def __init__(self, index: FileIndex, positions: list[int], load: Callable[[str], tuple[torch.Tensor, ...]],
                 bad: torch.Tensor, on_bad: str, with_position: bool) -> None:
        self.index, self.positions, self.load = index, np.asarray(positions, dtype=np.int64), load
        self.bad, self.on_bad, self.with_position = bad, on_bad, with_position
        self._warned = 0

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, k: int) -> tuple:
        n = len(self.positions)
        if not -n <= k < n:
            raise IndexError(f"item {k} of a split of {n} images")  # ends `for x in dataset`
        for step in range(n):
            pos = int(self.positions[(k + step) % n])
            if self.bad[pos]:
                continue
            path = self.index.path(pos)
            try:
                tensors = self.load(path)
            except BAD_IMAGE_ERRORS as e:
                if self.on_bad == "error":
                    raise ValueError(f"unreadable image {path} ({describe(e)}); set data.on_bad_image=skip to skip "
                                     "such files") from e
                self.bad[pos] = True
                self._warn(path, e)
                continue
            label = int(self.index.labels[pos])
            return (*tensors, label, int(self.positions[k])) if self.with_position else (*tensors, label)
        raise ValueError(f"none of the {n} images of this split of {self.index.root or 'the file list'} can be read")

    def _warn(self, path: str, e: BaseException) -> None:
        self._warned += 1
        if self._warned <= WARN_FIRST:
            more = "; further ones are counted without a message" if self._warned == WARN_FIRST else ""
            warnings.warn(f"skipped unreadable image {path} ({describe(e)}), using the next one{more}")


class DecodedView:
    """path -> `(uint8 [C, size, size],)`: resized (shorter side) and centre-cropped, for a recipe to augment
    (C = 1 with `gray`). A class, not a lambda, so loader workers started by spawn can receive it."""

    def __init__(self, size: int, gray: bool = False) -> None:
        self.size, self.gray = size, gray
        self.transform = T.Compose([T.ToImage(), T.Resize(size, antialias=True), T.CenterCrop(size)])

    def __call__(self, path: str) -> tuple[torch.Tensor]:
        image = load_rgb(path, self.size)
        return (self.transform(image.convert("L") if self.gray else image).as_subclass(torch.Tensor),)


class PlainView(DecodedView):
    """path -> `(float [C, size, size],)`: the evaluation transform, normalised."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], gray: bool = False) -> None:
        self.size, self.gray, self.transform = size, gray, plain_transform(size, mean, std)


class RecipeViews:
    """path -> two views of the decoded image by a recipe's per-image ops (recipes that do not crop while
    decoding, and grayscale images)."""

    def __init__(self, decoded: DecodedView, recipe: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.decoded, self.recipe = decoded, recipe

    def __call__(self, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        (image,) = self.decoded(path)
        return self.recipe(image), self.recipe(image)


class ImageFolderDataModule(ViewDataModule):
    """Images from `root` (`<class>/<image>` folders, or images with no class folders: unlabelled) or from
    `file_list`; train/val/test split with a fixed seed unless `val_root` / `test_root` name their own folders
    (with `val_root` alone, evaluation uses it too); `test_fraction` None: `held_out_share` of the images. Views made by DataLoader workers (`augment_on=cpu`) or on
    whole batches on the training device (`device`)."""

    def __init__(self, root: str | None = None, size: int | None = None, batch_size: int = 128,
                 num_workers: int | None = None, val_fraction: float = 0.1, test_fraction: float | None = None, split_seed: int = 0,
                 transform: Any = None, shuffle_seed: int = 0, on_bad_image: str = "skip",
                 augment_on: str = "auto", val_root: str | None = None, test_root: str | None = None,
                 file_list: str | None = None, channels: int | None = None) -> None:
        super().__init__(batch_size, loader_workers() if num_workers is None else num_workers,
                         shuffle_seed=shuffle_seed)
        if (root is None) == (file_list is None):
            raise ValueError(f"set exactly one of data.root (a folder) and data.file_list (a text or CSV file of "
                             f"paths), got root={root!r}, file_list={file_list!r}")
        if on_bad_image not in ("skip", "error"):
            raise ValueError(f"on_bad_image must be 'skip' or 'error', got {on_bad_image!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"data.channels must be 1 (grayscale), 3 (colour) or null (from the files), got "
                             f"{channels!r}")
        self.root, self.file_list, self.val_root, self.test_root = root, file_list, val_root, test_root
        self.size = None if size is None else check_size(size)
        self.fractions, self.split_seed, self._channels = (val_fraction, test_fraction), split_seed, channels
        self._augment_on(augment_on, transform)  # None: chosen from the files at setup (defaults.choose_recipe)
        self.on_bad_image = on_bad_image
        self.indexes: dict[str, FileIndex] = {}
        self._bad: dict[str, torch.Tensor] = {}

    @property
    def channels(self) -> int:  # type: ignore[override]
        """1 for a folder of grayscale files (or data.channels=1), else 3."""
        return self._channels if self._channels is not None else self.facts().channels

    def facts(self) -> ImageFacts:
        """Channels and median side from the headers of a few training files, and the training images' count."""
        if getattr(self, "_facts", None) is None:
            self._index()
            self._facts = peek_files(self.indexes["train"], self._split[0])
        return self._facts

    def _resolve(self) -> None:
        """What the config left null: the view size and the recipe, from the files."""
        if self.size is None:
            self.size = view_size(self.facts())
        if self.transform is None:
            name = choose_recipe(self.facts())
            self._augment_on(self._where, hydra.utils.instantiate({**recipe_config(name), "size": self.size}))

    def _index(self) -> None:
        if self.indexes:
            return  # indexed once per process: evaluation and memory-bank sizing call setup again
        train = read_file_list(self.file_list) if self.file_list else scan_folder(self.root)
        val = scan_folder(self.val_root, train.classes) if self.val_root else None
        test = scan_folder(self.test_root, train.classes) if self.test_root else val
        if train.duplicates:
            warnings.warn(f"{train.duplicates} path(s) under {self.root or self.file_list} reach a file or folder "
                          "already indexed (symbolic or hard links, link loops); each file is used once")
        if not train.labelled:
            warnings.warn(f"{self.root or self.file_list} has no labels (no class folders): training works, "
                          "label-based evaluation (k-NN) will be skipped")
        self.indexes = {"train": train, **({"val": val} if val else {}), **({"test": test} if test else {})}
        for k, ix in self.indexes.items():  # a test split that is the val folder shares its flags
            # in shared memory: the loader workers flag the files they cannot read, the main process counts them
            self._bad[k] = self._bad["val"] if k == "test" and ix is val else \
                torch.zeros(len(ix), dtype=torch.bool).share_memory_()
        if self.fractions[1] is None:
            self.fractions = (self.fractions[0], held_out_share(len(train)))
        self._split = split_indices(len(train), 0.0 if val else self.fractions[0], 0.0 if test else self.fractions[1],
                                    self.split_seed)

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train_set", None) is not None:
            return
        self._index()
        self._resolve()
        train, val, test = (self.indexes.get(k) for k in ("train", "val", "test"))
        tr, va, te = self._split
        self.num_classes, self._num_items = len(train.classes), len(train)
        gray = self.channels == 1
        opts = self.transform.options
        if self.device_augment or gray or not hasattr(self.transform, "after_crop"):
            decoded = DecodedView(self.size, gray)
            views = decoded if self.device_augment else RecipeViews(decoded, self.transform)
        else:
            views = CropFirstViews(self.transform)
        plain = PlainView(self.size, opts["mean"], opts["std"], gray)

        def part(key: str, load: Callable, with_position: bool, positions: list[int] | None = None) -> FolderImages:
            index = self.indexes[key]
            return FolderImages(index, list(range(len(index))) if positions is None else positions, load,
                                self._bad[key], self.on_bad_image, with_position)

        self.train_set = part("train", views, True, tr)
        self.val_set = part("val", views, True) if val else (part("train", views, True, va) if va else None)
        self.eval_train_set = part("train", plain, False, tr)
        self.eval_test_set = part("test", plain, False) if test else part("train", plain, False, te)
        self.eval_val_set = part("val", plain, False) if val else (part("train", plain, False, va) if va else None)
        self._check_same_index()

    def state_dict(self) -> dict[str, Any]:
        """The training position, plus the size and fingerprint of the training index (the split's source)."""
        state: dict[str, Any] = super().state_dict()
        if "train" in self.indexes:
            state.update(index_files=len(self.indexes["train"]), index_digest=self._digest())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state.items() if not k.startswith("index_")})
        self._saved_index = {k: v for k, v in state.items() if k.startswith("index_")}
        if self.indexes:
            self._check_same_index()

    def _digest(self) -> str:
        if getattr(self, "_index_digest", None) is None:
            self._index_digest = self.indexes["train"].digest()
        return self._index_digest

    def _check_same_index(self) -> None:
        """A resumed run must split the same files: else the test split would take images it trained on."""
        saved = getattr(self, "_saved_index", None)
        if not saved or saved.get("index_digest") == self._digest():
            return
        then, now = saved.get("index_files"), len(self.indexes["train"])
        what = (f"it held {then} image(s) when this run started and holds {now} now" if then != now else
                f"the same number of images ({now}), but other names, order or classes")
        raise ValueError(f"{self.root or self.file_list} changed since this run's checkpoint: {what}. The split "
                         "would be drawn again and the test split would take images the run trained on; restore "
                         "the folder to continue this run, or start a new one (another run_name)")

    def bad_images(self) -> list[str]:
        """The files found unreadable so far (by any loader process)."""
        return [self.indexes[k].path(int(p)) for k in ("train", "val", "test")
                if k in self.indexes and not (k == "test" and self._bad[k] is self._bad.get("val"))
                for p in torch.nonzero(self._bad[k]).flatten()]
