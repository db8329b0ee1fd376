"""Build the target/reference pairs that judge reference-guided colorization (written to reference_pairs.csv).

A pair is two *validation* photos of the same class or scene: the target is colorized from its gray L with
the reference's colours, and scored against its own true colours. Sources:

- ``colour-photos/val``: photos grouped by their source and original class (from MANIFEST.csv: ImageNet
  synset, Flowers-102 class, Caltech-101 category, grocery product, action, CamVid sequence, Yosemite
  season; faces, facades and street fashion are one scene each); at most one pair per group and
  ``--per-source`` pairs per source, so no single source dominates;
- the imagenet-samples validation split (one photo per class): a target paired with a colour-photos
  validation photo of the same synset or of the same object category.

The list is deterministic (``--seed``) and holds file names relative to ``../shared/data`` only.

    python benchmarks/reference_pairs.py --data ../shared/data --out benchmarks/reference_pairs.csv

``--tuning N`` builds instead a *tuning* list to choose variants on, so that the judged pairs are not also the
ones a variant was picked on: colour-photos pairs drawn by the same rule with each of ``--seeds`` in turn,
none sharing a photo with the pairs in ``--exclude`` (the judged list), one pair per target, the first N:

    python benchmarks/reference_pairs.py --tuning 90 --seeds 77,78,79,80 --per-source 6 --out tuning.csv
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

from worker.colorizers.datasets import colour_photos_groups, split_paths

JUDGED = Path(__file__).with_name("reference_pairs.csv")  # the committed list the benchmark judges on

# imagenet-samples validation classes with a same-object group in colour-photos/val (by synset or name).
CROSS_CLASSES = {
    "n01580077": ("imagenet-mini", "n01580077"),  # jay
    "n02102040": ("imagenette", "n02102040"),  # English springer
    "n03028079": ("imagenette", "n03028079"),  # church
    "n02317335": ("caltech101", "starfish"),
    "n02795169": ("caltech101", "barrel"),
    "n02841315": ("caltech101", "binocular"),
    "n01514668": ("caltech101", "rooster"),  # cock
    "n02992529": ("caltech101", "cellphone"),
    "n07734744": ("grocery", "Brown-Cap-Mushroom"),
}


def build(data: Path, seed: int, per_source: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    groups = {
        key: [f"colour-photos/{file}" for file in files]
        for key, files in colour_photos_groups(data / "colour-photos", "val").items()
    }
    pairs: list[tuple[str, str, str]] = []
    by_source: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (source, group), files in sorted(groups.items()):
        if len(files) >= 2:
            by_source[source].append((group, source))
    for source, entries in sorted(by_source.items()):
        for group, _ in rng.sample(entries, min(per_source, len(entries))):
            target, reference = rng.sample(sorted(groups[(source, group)]), 2)
            pairs.append((target, reference, f"{source}/{group}"))
    for ref in split_paths(data / "imagenet-samples").val:
        path = Path(ref.name)
        synset = path.name.split("_")[1]
        if synset in CROSS_CLASSES:
            source, group = CROSS_CLASSES[synset]
            reference = rng.choice(sorted(groups[(source, group)]))
            pairs.append((f"imagenet-samples/{path.name}", reference, f"imagenet/{synset}"))
    return pairs


def build_tuning(
    data: Path, exclude: Path, seeds: list[int], per_source: int, count: int
) -> list[tuple[str, str, str]]:
    """See the module docstring (``--tuning``)."""
    with exclude.open(newline="") as fh:
        judged = {row[key] for row in csv.DictReader(fh) for key in ("target", "reference")}
    pairs: list[tuple[str, str, str]] = []
    targets: set[str] = set()
    for seed in seeds:
        for target, reference, group in build(data, seed, per_source):
            if (
                target.startswith("colour-photos/")
                and not {target, reference} & judged
                and target not in targets
            ):
                targets.add(target)
                pairs.append((target, reference, group))
    return pairs[:count]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=JUDGED)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--per-source", type=int, default=3)
    parser.add_argument("--tuning", type=int, default=0, help="build N tuning pairs instead (see above)")
    parser.add_argument("--seeds", default="77,78,79,80", help="with --tuning: the seeds, in turn")
    parser.add_argument("--exclude", type=Path, default=JUDGED,
                        help="with --tuning: no photo of these pairs")  # fmt: skip
    args = parser.parse_args()
    if args.tuning:
        if args.out == JUDGED:
            parser.error("--tuning needs its own --out (the judged list stays as it is)")
        seeds = [int(seed) for seed in args.seeds.split(",")]
        pairs = build_tuning(args.data, args.exclude, seeds, args.per_source, args.tuning)
    else:
        pairs = build(args.data, args.seed, args.per_source)
    with args.out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["target", "reference", "group"])
        writer.writerows(pairs)
    print(f"{len(pairs)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
