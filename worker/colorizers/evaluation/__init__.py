"""``colorlab evaluate``: every method colorizes real photos' lightness and is scored against their colours
(pure python/torch: no web, database or queue).

Each photo's lightness goes through the same code the worker uses
(:func:`~worker.colorizers.loading.get_colorizer` and :func:`~worker.colorizers.pipeline.predict_many`), and
the delivered RGB image is scored against the real photo with :mod:`worker.colorizers.metrics`. The
ab-based metrics use the delivered image converted back to Lab, so gamut mapping and 8-bit rounding count.
The trivial prediction ``gray`` (ab = 0: the photo's own lightness, no colour) is always evaluated as a
baseline, and a ``real`` row records the real photo's colourfulness and classifier top-1.

Modules, by concern:

- :mod:`.selection`: which photos (a folder, its validation split, or a zip's ``test/`` entries; grayscale
  ground truths skipped; ``limit`` spread evenly) and their reference images;
- :mod:`.contestants`: loading the methods and colorizing photos with them (and the gray baseline);
- :mod:`.scoring`: one delivered image's metrics and the classifier's top-1;
- :mod:`.store`: the resumable per-image CSV files and ``run.json`` (data, ε, weights fingerprints, options);
- :mod:`.report` and :mod:`.figures`: the summaries (CSV, markdown), curves and contact sheet;
- :mod:`.evaluate`: :func:`~.evaluate.run_evaluation`, which ties them together.
"""


class EvaluationError(RuntimeError):
    """The evaluation cannot run as asked (unavailable method, bad data folder, mismatched output folder)."""
