"""Raw label values -> class ids, and the label oddities stage ``prepare`` reports.

:func:`label_ids` numbers the classes (the label set comes from train). :func:`missing_label`
finds the values that stand for no label at all (empty, ``NaN``): a user error, like an empty
label. :func:`oddities` counts, and warns once about, values that are kept but look wrong:
words that read like a missing value (``None``, ``null``, ``NA``...) and a label column that
mixes numbers and words (``0``, ``1``, ``pos``).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Any

from distillery.core.io import UserError

logger = logging.getLogger(__name__)

_INT = re.compile(r"[+-]?\d+")
MISSING_LIKE = ("none", "null", "na", "n/a", "#n/a", "<na>")
"""Label texts (any case) that read like a missing value but may be a real class (an intent
``none``): kept as classes, counted and warned about."""


def missing_label(value: Any) -> bool:
    """No label at all: None, an empty or blank text, a float NaN or the text ``NaN`` (how
    pandas writes a missing value, never a class name)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "-nan")


def oddities(values: dict[str, list]) -> dict[str, int]:
    """Count (and warn once each about) label values that are kept but look wrong.

    Returns:
        ``labels_missing_like``: examples (all splits) whose label is a text of
        :data:`MISSING_LIKE`; ``labels_mixed_numeric_words``: when train's label column holds
        both integers and words, the examples of the smaller of the two groups (else 0).
    """
    texts = [v.strip() for vals in values.values() for v in vals if isinstance(v, str)]
    missing = Counter(v for v in texts if v.lower() in MISSING_LIKE)
    if missing:
        logger.warning("%d label(s) read like a missing value (%s) and are kept as classes: "
                       "if they are missing labels, fill them in or delete those rows",
                       missing.total(), _shown(missing))
    train = [v.strip() for v in values["train"] if isinstance(v, str)]
    numbers = Counter(v for v in train if _INT.fullmatch(v))
    words = Counter(v for v in train if not _INT.fullmatch(v))
    mixed = min(numbers.total(), words.total())
    if mixed:
        logger.warning(
            "train labels mix numbers (%d examples: %s) and words (%d examples: %s), read as %d "
            "string classes: fix the odd rows in the source, or use one kind throughout (numbers "
            "with data.label_names for their names)", numbers.total(), _shown(numbers),
            words.total(), _shown(words), len(numbers) + len(words))
    return {"labels_missing_like": missing.total(), "labels_mixed_numeric_words": mixed}


def _shown(counts: Counter, k: int = 5) -> str:
    more = f", ... {len(counts) - k} more" if len(counts) > k else ""
    return ", ".join(f"{v!r}: {n}" for v, n in counts.most_common(k)) + more


def label_ids(
    values: dict[str, list], label_names: list[str] | None, classlabel: list[str] | None = None
) -> tuple[dict[str, list[int]], list[str], str]:
    """Class ids of raw label values; the label set comes from ``values["train"]``.

    Integer labels (ints, or strings that all look like ints) keep their value as id when they
    are ``0..C-1``, else the sorted values are numbered; their names are ``label_names`` if
    given (one per class), else the dataset's ClassLabel names, else the values as strings.
    String labels are sorted and numbered; ``label_names`` must then be null.

    Returns:
        Ids per split (same keys as ``values``), the names (index = id), ``"int"`` or ``"str"``.

    Raises:
        ValueError: fewer than 2 classes, ``label_names`` of the wrong length or given for
            string labels, a label of another split that train lacks, unusable label values.
    """
    kind, train = _normalise(values["train"], "train")
    classes = sorted(set(train))
    if kind == "int":
        if label_names is not None and len(label_names) != len(classes):
            raise UserError(f"data.label_names has {len(label_names)} names but train has "
                             f"{len(classes)} classes ({', '.join(map(str, classes))}): fix "
                             "data.label_names or set it to null")
        if label_names is not None:
            names = list(label_names)
        elif classlabel is not None:
            names = [classlabel[v] if 0 <= v < len(classlabel) else str(v) for v in classes]
        else:
            names = [str(v) for v in classes]
    else:
        if label_names is not None:
            raise UserError(f"data.label_names is {label_names!r} but the labels are strings "
                             f"(e.g. {classes[0]!r}), which are their own names: set "
                             "data.label_names: null")
        names = list(classes)
    if len(classes) < 2:
        raise UserError(f"train has a single class ({names[0]!r}): a classifier needs at least "
                         "2; check data.source and data.label_column")
    index = {v: i for i, v in enumerate(classes)}
    ids = {"train": [index[v] for v in train]}
    for name, raw in values.items():
        if name == "train":
            continue
        vals = _normalise(raw, name)[1] if kind == "int" else [str(v).strip() for v in raw]
        unknown = Counter(v for v in vals if v not in index)
        if unknown:
            shown = ", ".join(f"{v!r} ({n} examples)" for v, n in unknown.most_common(5))
            raise UserError(f"{name} split: label {shown} does not occur in train; every "
                             "class must have training examples")
        ids[name] = [index[v] for v in vals]
    return ids, names, kind


def _normalise(values: list, split: str) -> tuple[str, list]:
    """``("int", ints)`` or ``("str", strings)`` of raw label values."""
    if all(isinstance(v, int) for v in values):
        return "int", [int(v) for v in values]
    if all(isinstance(v, float) and v.is_integer() for v in values):
        return "int", [int(v) for v in values]
    if all(isinstance(v, str) for v in values):
        stripped = [v.strip() for v in values]
        if all(_INT.fullmatch(v) for v in stripped):
            return "int", [int(v) for v in stripped]
        return "str", stripped
    types = sorted({type(v).__name__ for v in values})
    raise UserError(f"{split} split: the label column holds {', '.join(types)} values; "
                     "expected class labels (integers or strings), check data.label_column")
