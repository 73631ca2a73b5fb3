"""Dataset examples at scale: photos per second, peak memory and cache size of ranking a folder.

    .venv/bin/python bench/bench_dataset.py --photos 500          # or: make bench-dataset
    .venv/bin/python bench/bench_dataset.py --photos 1000 --json /tmp/dataset.json

1. Generates N synthetic photos (480x360 JPEG: smooth colour fields, edges, texture and noise)
   into a temporary folder that is deleted at the end (never commit them).
2. Ranks them for all 4,224 filters, k per filter (`generator.dataset.rank_dataset`, the embedded
   VGG16 weights, a temporary activation cache): photos/s (wall), peak RSS (resource.getrusage:
   the process's high-water mark, model included; run each N in its own process to compare),
   cache bytes per photo.
3. The bare forward pass (`MaxActivations`) on 8 batches of the same photos, decoded beforehand,
   right before and right after the ranking: photos/s, and the ranking's rate over it by wall
   time and by process CPU time (steadier when other jobs share the cores).
4. `run_dataset` on the same folder: the ranking all cached (no forward pass; photos/s), then
   every filter's patches and dataset.json written (seconds).
5. Patch sizes on real photos: the six built-in scikit-image photos ranked for all 4,224 filters;
   mean bytes per patch and per dataset.json by layer, and the full atlas at k = 9 from them.
"""

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.architecture import CONV_LAYERS  # noqa: E402


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthetic_photo(rng, width=480, height=360):
    """A photo-like uint8 (height, width, 3) image: a blurred colour field, a few shapes, texture, noise."""
    field = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    image = np.asarray(field, np.float32)
    for _ in range(rng.integers(2, 6)):
        top, left = rng.integers(0, height - 40), rng.integers(0, width - 40)
        image[top:top + rng.integers(20, 160), left:left + rng.integers(20, 200)] = rng.integers(0, 256, 3)
    stripes = np.sin(np.arange(width) * rng.uniform(0.05, 0.8))[None, :, None] * rng.uniform(0, 30)
    image = image + stripes + rng.normal(0, 8, image.shape)
    photo = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
    return photo


def make_photos(folder, count, seed=0):
    rng = np.random.default_rng(seed)
    for number in range(count):
        synthetic_photo(rng).save(folder / f"photo-{number:05d}.jpg", quality=85)


def patch_sizes(site):
    """{layer: (mean bytes per patch, mean bytes per dataset.json, patches)} under a site's vgg16/."""
    sizes = {}
    for layer in CONV_LAYERS:
        layer_dir = Path(site, "vgg16", layer.name)
        patches = [path.stat().st_size for path in layer_dir.glob("*/dataset-*.webp")]
        records = [path.stat().st_size for path in layer_dir.glob("*/dataset.json")]
        if patches:
            sizes[layer.name] = (statistics.fmean(patches), statistics.fmean(records), len(patches))
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=500, help="synthetic photos to rank (default 500)")
    parser.add_argument("--patches", type=int, default=9, help="patches per filter (default 9)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from generator.cli import quiet_tensorflow

    quiet_tensorflow()
    from generator.activation_cache import ActivationCache
    from generator.dataset import MaxActivations, rank_dataset, run_dataset
    from generator.dataset_photos import DatasetOptions, dataset_photos
    from generator.model import load_vgg16, preprocess
    from generator.photos import PhotoReader, load_photo

    loaded = load_vgg16("embedded", log=lambda _: None)
    units = [(layer.name, index) for layer in CONV_LAYERS for index in range(layer.filters)]
    results = {"photos": args.photos, "patches": args.patches, "batch_size": args.batch_size}
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as work:
        work = Path(work)
        (work / "photos").mkdir()
        began = time.perf_counter()
        make_photos(work / "photos", args.photos)
        print(f"generated {args.photos} photos in {time.perf_counter() - began:.0f} s", flush=True)
        options = DatasetOptions(patches=args.patches, images_dir=work / "photos", include_builtin=False,
                                 batch_size=args.batch_size)
        photos = dataset_photos(options)

        forward = MaxActivations(loaded.conv_base, preprocess)
        files = [photo.path for photo in photos[: 8 * args.batch_size]]
        batches = [np.stack([load_photo(path) for path in files[start:start + args.batch_size]])
                   for start in range(0, len(files), args.batch_size)]
        forward(batches[0])  # trace once

        def bare_forward():
            """(wall, process CPU) seconds per photo of the forward pass alone on decoded batches."""
            wall, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                forward(batch)
            return (time.perf_counter() - wall) / len(files), (time.process_time() - cpu) / len(files)

        bare = [bare_forward()]
        results["peak_rss_mb_before"] = round(peak_rss_mb())
        cache = ActivationCache(loaded.sha256, 224, len(forward.units), work / "cache")
        wall, cpu = time.perf_counter(), time.process_time()
        rank_dataset(photos, PhotoReader(224, print), forward, cache, np.arange(len(units)), args.patches,
                     args.batch_size, progress=True)
        wall, cpu = (time.perf_counter() - wall) / len(photos), (time.process_time() - cpu) / len(photos)
        results["peak_rss_mb"] = round(peak_rss_mb())
        bare.append(bare_forward())
        bare_wall, bare_cpu = statistics.fmean(b[0] for b in bare), statistics.fmean(b[1] for b in bare)
        results["rank_photos_per_s"] = round(1 / wall, 2)
        results["bare_forward_photos_per_s"] = f"{1 / bare_wall:.2f} (before {1 / bare[0][0]:.2f}, after {1 / bare[1][0]:.2f})"
        results["rank_over_bare_wall"] = round(bare_wall / wall, 2)
        results["rank_over_bare_cpu"] = round(bare_cpu / cpu, 2)
        cache_files = list((work / "cache").rglob("*.npy"))
        results["cache_bytes_per_photo"] = round(sum(path.stat().st_size for path in cache_files) / len(cache_files))

        written = run_dataset(loaded, work / "site", units, options, cache_root=work / "cache", log=print)
        results["write_seconds_all_filters"] = round(written.write_seconds, 1)
        results["cached_forward_passes"] = written.forward_passes
        results["cached_photos_per_s"] = round(written.readable / written.rank_seconds, 1)

        real = run_dataset(loaded, work / "real", units, DatasetOptions(patches=args.patches), cache_root=work / "cache",
                           progress=False, log=print)
        sizes = patch_sizes(work / "real")
        layers = {layer.name: layer.filters for layer in CONV_LAYERS}
        results["real_photos"] = real.readable
        results["real_patch_bytes_by_layer"] = {name: round(size[0]) for name, size in sizes.items()}
        results["real_record_bytes_by_layer"] = {name: round(size[1]) for name, size in sizes.items()}
        patch_mb = sum(layers[name] * 9 * size[0] for name, size in sizes.items()) / 1e6
        record_mb = sum(layers[name] * size[1] / max(1, size[2] / layers[name]) * 9 for name, size in sizes.items()) / 1e6
        results["full_atlas_k9_patches_mb"] = round(patch_mb, 1)
        results["full_atlas_k9_records_mb"] = round(record_mb, 1)
        results["peak_rss_mb_end"] = round(peak_rss_mb())

    for key, value in results.items():
        print(f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print(f"10,000 photos at this rate: {10_000 / results['rank_photos_per_s'] / 60:.0f} min of ranking "
          f"(cached rerun: {10_000 / results['cached_photos_per_s']:.0f} s)")


if __name__ == "__main__":
    main()
