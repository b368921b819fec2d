"""Real image sets that install offline, written as image folders, each trained with the default command
(`contrastive-train data=image_folder data.root=<folder>`, nothing else set), as a Markdown table: trained vs
random init vs raw pixels on k-NN, 10-label k-NN and the linear probe, and the training time.

    pip install -e '.[images]'                      # scikit-image: its wheel holds the photos and faces
    python scripts/image_sets.py --out image_sets   # every set, seed 0
    python scripts/image_sets.py --out image_sets --sets digits --seeds 0 1 2

The sets (built once under --out/folders, PNG files in <set>/<class>/):
- digits: scikit-learn's 1,797 handwritten digits, 8x8 grayscale, 10 classes;
- textures: 32x32 patches (a 16x16 grid) of scikit-image's brick, grass and gravel photos, grayscale, 3 classes;
- photos: 32x32 patches (a 16x16 grid of the central 512x512) of eight of scikit-image's colour photos (astronaut,
  coffee, cat, Hubble deep field, motorcycle, rocket, retina, stained tissue), which photo a patch is from;
- faces: scikit-image's LFW subset, 200 25x25 grayscale crops, faces vs not faces.
Each run's eval.json is kept under --out; a run whose eval.json is there is read, not repeated."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

COLUMNS = ("knn_top1", "knn10_top1", "linear_top1")
FEATURES = ("trained", "random_init", "raw_pixels")


def save(folder: str, label: str, k: int, pixels: np.ndarray) -> None:
    os.makedirs(os.path.join(folder, label), exist_ok=True)
    Image.fromarray(pixels).save(os.path.join(folder, label, f"{k:05d}.png"))


def patches(image: np.ndarray, side: int = 32, grid: int = 16) -> list[np.ndarray]:
    """`grid` x `grid` non-overlapping `side`-pixel patches from the centre of `image` (H, W[, C])."""
    h, w = image.shape[:2]
    top, left = (h - side * grid) // 2, (w - side * grid) // 2
    if min(top, left) < 0:
        raise ValueError(f"an image of {h}x{w} holds no {grid}x{grid} grid of {side}-pixel patches")
    return [image[top + i * side:top + (i + 1) * side, left + j * side:left + (j + 1) * side]
            for i in range(grid) for j in range(grid)]


def digits(folder: str) -> None:
    from sklearn.datasets import load_digits
    d = load_digits()
    for k, (img, y) in enumerate(zip(d.images, d.target)):
        save(folder, str(y), k, np.round(img * 255 / 16).astype(np.uint8))


def textures(folder: str) -> None:
    from skimage import data
    for name in ("brick", "grass", "gravel"):
        for k, p in enumerate(patches(getattr(data, name)())):
            save(folder, name, k, p)


def photos(folder: str) -> None:
    from skimage import data
    shots = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea,
             "hubble_deep_field": data.hubble_deep_field, "motorcycle": lambda: data.stereo_motorcycle()[0],
             "rocket": data.rocket, "retina": data.retina, "immunohistochemistry": data.immunohistochemistry}
    for name, load in shots.items():
        image = load()[..., :3]
        for k, p in enumerate(patches(image, 32, min(16, min(image.shape[:2]) // 32))):
            save(folder, name, k, p)


def faces(folder: str) -> None:
    from skimage import data
    images = data.lfw_subset()  # [200, 25, 25] in [0, 1]: 100 faces, then 100 other crops
    for k, img in enumerate(images):
        save(folder, "face" if k < 100 else "other", k, np.round(img * 255).astype(np.uint8))


SETS: dict[str, Callable[[str], None]] = {"digits": digits, "textures": textures, "photos": photos, "faces": faces}


def run(name: str, folder: str, seed: int, out: str) -> dict:
    """The eval.json of the default command on `folder` (and its wall-clock seconds)."""
    run_dir = os.path.join(out, "runs", name, f"seed{seed}")
    path = os.path.join(run_dir, "eval.json")
    if not os.path.isfile(path):
        train = os.path.join(os.path.dirname(sys.executable), "contrastive-train")
        start = time.time()
        subprocess.run([train, "data=image_folder", f"data.root={folder}", f"seed={seed}",
                        f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false"], check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(run_dir, "wall_seconds.txt"), "w") as f:
            f.write(f"{time.time() - start:.0f}\n")
    with open(path) as f:
        result = json.load(f)
    with open(os.path.join(run_dir, "wall_seconds.txt")) as f:
        result["wall_seconds"] = float(f.read())
    # training: from the config written before fit to the last checkpoint written at its end
    result["train_seconds"] = (os.path.getmtime(os.path.join(run_dir, "checkpoints", "last.ckpt"))
                               - os.path.getmtime(os.path.join(run_dir, "config.yaml")))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="image_sets")
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    a = ap.parse_args()
    print("| set | images | features | " + " | ".join(COLUMNS) + " | train s (run s) |")
    print("|---|---|---|" + "---|" * len(COLUMNS) + "---|")
    for name in a.sets:
        folder = os.path.abspath(os.path.join(a.out, "folders", name))
        if not os.path.isdir(folder):
            SETS[name](folder)
        count = sum(len(files) for _, _, files in os.walk(folder))
        runs = [run(name, folder, s, a.out) for s in a.seeds]
        for feat in FEATURES:
            cells = []
            for col in COLUMNS:
                vals = [r[f"{col}/{feat}"] for r in runs]
                spread = f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""
                cells.append(f"{statistics.mean(vals):.3f}{spread}")
            secs = (f"{statistics.mean(r['train_seconds'] for r in runs):.0f} "
                    f"({statistics.mean(r['wall_seconds'] for r in runs):.0f})") if feat == "trained" else ""
            print(f"| {name} | {count:,} | {feat} | " + " | ".join(cells) + f" | {secs} |")


if __name__ == "__main__":
    main()
