"""Image data modules: digits, CIFAR-10, image folders; per-image and on-device augmentations."""
