"""The saliency stage: example photos -> saliency maps and top examples under site_src/examples/.

The steps, each in its own module:
1. photos (`generator.photos`): the built-in set plus the user's folder, loaded as the model sees them;
2. ranking (`generator.ranking`): which photos excite each asked unit most (its top-k);
3. choosing what to explain (`generator.explain`): the top-1 class, else the asked unit the
   photo excites most relative to the others;
4. writing the pages' data (`generator.example_pages`), maps from `generator.attribution`.
Options: `generator.example_options.ExampleOptions`. The files: docs/ARCHITECTURE.md.
"""

from tqdm import tqdm

from . import store
from .errors import UserError
from .example_options import ExampleOptions
from .example_pages import ExampleWriter, write_top_examples
from .explain import choose_primary, class_head_of
from .photos import MODEL_INPUT_SIZE, PhotoReader, gather_photos
from .ranking import MeanActivations, rank_photos
from .targets import checked_targets


def run_examples(loaded, site_src, units=(), classes=(), options=ExampleOptions(), *, preprocess=None,
                 progress=True, log=print):
    """Saliency maps on example photos, written under site_src/examples/ (files: docs/ARCHITECTURE.md).

    The first options.max_pages readable photos (the built-in ones, then options.images_dir in
    name order; unreadable ones skipped with one warning line each) are ranked for the asked
    `units`, and each gets a page: maps of the primary target (explain.choose_primary) and of the
    asked `classes`, and per unit whose top-k holds the photo its attribution and activation
    maps. The photos after them are not read: a folder of any size costs at most max_pages
    photos here (the dataset examples, generator.dataset, rank all of it). A page with equal
    settings and weights is kept (resume). Then examples/top_examples.json.

    Args:
        loaded: generator.model.LoadedModel (model, source, sha256, has_top).
        site_src: the MkDocs docs_dir.
        units: [(conv layer name, filter index)], the units the atlas computed.
        classes: class indices to explain on every photo (needs the class head).
        options: ExampleOptions.
        preprocess: RGB 0..255 -> model input (default generator.model.preprocess).
        progress: show tqdm progress bars.
        log: receives warnings and one summary line.
    Returns:
        The example.json paths of the pages, in photo order.
    Raises:
        UserError: bad images_dir, no readable photo, unknown unit or class.
    """
    if preprocess is None:
        from .model import preprocess
    unit_targets, class_targets = checked_targets(loaded.model, units, classes)
    photos = gather_photos(options.images_dir, options.include_builtin)
    size = loaded.model.inputs[0].shape[1] or MODEL_INPUT_SIZE
    read = PhotoReader(size, log)
    ranker = MeanActivations(loaded.model, preprocess) if unit_targets else None
    ranking = rank_photos(photos, read, ranker, unit_targets, options.top_k, options.max_pages, progress)
    if not ranking.readable:
        raise UserError("none of the example photos could be read; see the warnings above")
    head = class_head_of(loaded.model, preprocess)
    writer = ExampleWriter(loaded, site_src, options, preprocess, size, head.names if head else None)
    paths = []
    for photo_id in tqdm(ranking.readable, desc="saliency maps", unit="photo", disable=not progress):
        rgb = read(photos[photo_id])
        if rgb is None:
            continue
        predictions = head.predictions(rgb) if head else []
        primary = choose_primary(predictions, ranking.relative_activations(photo_id), unit_targets)
        other_classes = [target for target in class_targets if target != primary.target]
        unit_entries = ranking.entries(photo_id)
        paths.append(writer.write(photos[photo_id], rgb, predictions, primary, other_classes, unit_entries))
    write_top_examples(site_src, photos, ranking)
    unread = len(photos) - ranking.examined
    log(f"examples: {len(paths)} pages from {len(ranking.readable)} readable photos "
        f"({ranking.examined - len(ranking.readable)} skipped), {len(unit_targets)} units ranked"
        + (f"; {unread:,} photo{'s' * (unread != 1)} after them not mapped (--example-pages N maps more)" if unread else ""))
    return paths


def run_examples_over_drawn_units(loaded, site_src, options=ExampleOptions(), *, preprocess=None, progress=True,
                                  log=print):
    """The saliency stage over every unit already drawn under `site_src` (`build.py --examples-only`).

    Filters are ranked; classes are explained on every photo (they need the class head). Takes
    the same arguments as run_examples, less the units, which come from the unit records
    (generator.store.read_records). Raises UserError when none is drawn, or a record is invalid.
    """
    drawn = store.read_records(site_src)
    if not drawn:
        raise UserError(f"no drawn units under {site_src}; draw some first, or give the --out that holds them")
    units = [(record["layer"], record["index"]) for record in drawn if record["kind"] == "filter"]
    classes = [record["index"] for record in drawn if record["kind"] == "class"]
    return run_examples(loaded, site_src, units, classes, options, preprocess=preprocess, progress=progress, log=log)
