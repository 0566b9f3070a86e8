"""Write an IMDB-sized long-document sentiment set made of SST-2 sentences, for checking that
stage ``prepare`` runs in bounded memory on long texts (no long-document dataset ships
offline with the project).

Each document is a concatenation of SST-2 train rows of one class, so its label is that
class. Word counts follow IMDB's shape: log-normal with median ~180 words (IMDB's is 174, its
mean 234), plus 1 % of documents of 3,000-6,000 words. 25,000 train documents (IMDB's train
size) and 2,000 dev documents, as CSV with header ``text,label`` (labels 0 / 1). Seeded: the
same files every time.

Usage: ``python scripts/long_docs.py --sst2 ../shared/datasets/sst2 --out /tmp/long_docs``,
then e.g. ``dvc exp run -S data.source=/tmp/long_docs -S data.text_column=text prepare``
(docs/your-task.md, Long documents).
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path


def _rows(path: Path) -> dict[int, list[str]]:
    """SST-2 train texts by label."""
    by_label: dict[int, list[str]] = {0: [], 1: []}
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            text, label = line.rstrip("\n").rsplit("\t", 1)
            by_label[int(label)].append(text.strip())
    return by_label


def _length(rng: random.Random) -> int:
    if rng.random() < 0.01:
        return rng.randint(3000, 6000)
    return max(10, min(3000, round(rng.lognormvariate(5.2, 0.75))))


def documents(by_label: dict[int, list[str]], n: int, rng: random.Random) -> list[tuple]:
    """``n`` (text, label) documents, classes balanced."""
    out = []
    for i in range(n):
        label, words, target = i % 2, [], _length(rng)
        while len(words) < target:
            words += rng.choice(by_label[label]).split()
        out.append((" ".join(words[:target]), label))
    rng.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sst2", default="../shared/datasets/sst2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=25000)
    ap.add_argument("--dev", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(0)
    by_label = _rows(Path(args.sst2) / "train.tsv")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", args.train), ("dev", args.dev)):
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(documents(by_label, n, rng))


if __name__ == "__main__":
    main()
