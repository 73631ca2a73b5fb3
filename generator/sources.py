"""The `--weights` sources, checked without TensorFlow: cheap answers before a model loads.

"imagenet" and "auto" can give the 1,000-class head; "embedded" never can; a PATH can when its
HDF5 file holds a dataset shaped like the head's first kernel. generator.model loads them.
"""

from pathlib import Path

import h5py

FC1_KERNEL_SHAPE = (7 * 7 * 512, 4096)
KNOWN_SOURCES = ("auto", "imagenet", "embedded")
NO_HEAD = ("class images need the 1,000-class ImageNet head, which the '{source}' weights lack; use --weights "
           "imagenet (or a full weights file), or drop --classes/predictions")


def holds_head_weights(path):
    """True when the HDF5 file has a dataset shaped like the fc1 kernel (25088, 4096).

    A file without one cannot fill the head, so the (slow, 528 MB) full model is not tried.
    """
    found = []

    def visit(_name, item):
        if isinstance(item, h5py.Dataset) and item.shape == FC1_KERNEL_SHAPE:
            found.append(item)
            return True  # stops the visit
        return None

    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return bool(found)


def path_problem(path):
    """Why the weights file `path` cannot be used (None when it may): missing, a folder, not HDF5."""
    path = Path(path)
    if path.is_dir():
        return f"weights file {path} is a folder; give a Keras .weights.h5 or .h5 file"
    if not path.is_file():
        return (f"weights file {path} does not exist; give a Keras .weights.h5 or .h5 file, "
                "or use --weights embedded or --weights imagenet")
    if not path.name.endswith(".h5") or not h5py.is_hdf5(path):
        return f"weights file {path} is not a Keras .weights.h5 or .h5 (HDF5) file, or is corrupt"
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        return f"weights file {path} is a damaged HDF5 file ({' '.join(str(error).split())[:120]})"
    return None


def source_problem(source, needs_head=False):
    """Why `--weights source` cannot serve this run (None when it may), without loading a model.

    Args:
        source: "auto", "imagenet", "embedded" or a file path.
        needs_head: the run draws classes, which need the ImageNet head.
    """
    if source == "embedded":
        return NO_HEAD.format(source=source) if needs_head else None
    if source in KNOWN_SOURCES:
        return None
    path = Path(source).expanduser()
    problem = path_problem(path)
    if problem is None and needs_head:
        try:
            if not holds_head_weights(path):
                return NO_HEAD.format(source=f"path:{path.name}")
        except OSError as error:
            return f"cannot read weights file {path}: {' '.join(str(error).split())}"
    return problem
