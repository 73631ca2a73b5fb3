"""The choices of the saliency stage (example photos), typed and checked without TensorFlow."""

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .saliency_methods import METHOD_NAMES, AttributionSettings, check_methods

DEFAULT_UNIT_METHOD = "guided_backprop"


@dataclass(frozen=True)
class ExampleOptions:
    """Every choice of one run of the saliency stage (generator.examples.run_examples).

    Attributes:
        methods: saliency methods of the primary target's and the asked classes' maps, in
            `saliency_methods.METHOD_NAMES` order or any order given (lists become tuples).
        unit_method: the method of the per-unit attribution maps.
        top_k: photos kept per asked unit, >= 1.
        max_pages: photos the stage reads, ranks and writes a page for, >= 1 (built-in first,
            then images_dir in name order; the rest of a large folder is left to the dataset
            examples).
        include_builtin: include the scikit-image sample photos.
        images_dir: a folder of the user's photos, or None.
        attribution: AttributionSettings of the costly methods.
    """

    methods: tuple = METHOD_NAMES
    unit_method: str = DEFAULT_UNIT_METHOD
    top_k: int = 3
    max_pages: int = 64
    include_builtin: bool = True
    images_dir: Path | None = None
    attribution: AttributionSettings = field(default_factory=AttributionSettings)

    def __post_init__(self):
        object.__setattr__(self, "methods", tuple(self.methods))
        if self.images_dir is not None:
            object.__setattr__(self, "images_dir", Path(self.images_dir))
        check_methods([*self.methods, self.unit_method])
        if self.top_k < 1:
            raise UserError(f"--top-k must be at least 1 (got {self.top_k})")
        if self.max_pages < 1:
            raise UserError(f"--example-pages must be at least 1 (got {self.max_pages})")
