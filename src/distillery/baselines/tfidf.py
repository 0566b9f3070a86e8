"""TF-IDF of word and character n-grams + logistic regression (scikit-learn), trained on the
labelled train split, its ``C`` chosen on val.

Saved as JSON (the two vocabularies and the vectoriser settings) and safetensors (idf weights
and the classifier's coefficients); loading rebuilds the scikit-learn objects around them, so
no pickle is written or read. A sentence pair is read as one text: ``text [SEP] pair``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from distillery.baselines.base import META, Context
from distillery.config.baselines import BaselinesParams
from distillery.measure import evaluate

logger = logging.getLogger(__name__)

KIND = "tfidf"
SEP = " [SEP] "


def joined(texts: list[str], pairs: list[str] | None) -> list[str]:
    """One string per example (a pair joined with ``[SEP]``)."""
    return list(texts) if pairs is None else [a + SEP + b for a, b in zip(texts, pairs,
                                                                          strict=True)]


def _vectorisers(p: BaselinesParams) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    common = {"sublinear_tf": True, "min_df": p.tfidf_min_df, "dtype": np.float32}
    return (TfidfVectorizer(analyzer="word", ngram_range=tuple(p.tfidf_word_ngrams), **common),
            TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(p.tfidf_char_ngrams),
                            **common))


class TfidfClassifier:
    """Two fitted TF-IDF vectorisers and a logistic regression on their concatenation."""

    def __init__(self, word: TfidfVectorizer, char: TfidfVectorizer,
                 clf: LogisticRegression, labels: list[str], settings: dict) -> None:
        self.word, self.char, self.clf = word, char, clf
        self.labels, self.settings = labels, settings
        self.provider = "sklearn"

    def features(self, texts: list[str], pairs: list[str] | None = None) -> sparse.csr_matrix:
        docs = joined(texts, pairs)
        return sparse.hstack([self.word.transform(docs), self.char.transform(docs)],
                             format="csr")

    def logits(self, texts: list[str], pairs: list[str] | None = None) -> np.ndarray:
        """``(N, C)`` decision values (two classes: ``[-d, d] / 2``, so argmax is the class)."""
        d = self.clf.decision_function(self.features(texts, pairs))
        if d.ndim == 1:
            d = np.stack([-d / 2, d / 2], axis=1)
        return d.astype(np.float32)

    @property
    def n_params(self) -> int:
        return int(self.clf.coef_.size + self.clf.intercept_.size)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        vocab = {name: {k: int(v) for k, v in vec.vocabulary_.items()}
                 for name, vec in (("word", self.word), ("char", self.char))}
        (folder / "vocabulary.json").write_text(json.dumps(vocab, ensure_ascii=False))
        arrays = {"word_idf": self.word.idf_, "char_idf": self.char.idf_,
                  "coef": self.clf.coef_, "intercept": self.clf.intercept_,
                  "classes": self.clf.classes_.astype(np.int64)}
        # safetensors writes the raw buffer: a Fortran-ordered coef_ (multinomial) must be
        # made C-contiguous first or it comes back transposed in memory
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                  str(folder / "weights.safetensors"))
        (folder / META).write_text(json.dumps({"kind": KIND, "labels": self.labels,
                                               **self.settings}, indent=1))


def load(folder: Path) -> TfidfClassifier:
    meta = json.loads((folder / META).read_text())
    p = BaselinesParams(**{k: meta[k] for k in ("tfidf_word_ngrams", "tfidf_char_ngrams",
                                                 "tfidf_min_df")})
    vocab = json.loads((folder / "vocabulary.json").read_text())
    arrays = load_file(str(folder / "weights.safetensors"))
    word, char = _vectorisers(p)
    for vec, name in ((word, "word"), (char, "char")):
        vec.vocabulary_ = vocab[name]
        vec.idf_ = arrays[f"{name}_idf"]
    clf = LogisticRegression()
    clf.coef_, clf.intercept_ = arrays["coef"], arrays["intercept"]
    clf.classes_ = arrays["classes"]
    return TfidfClassifier(word, char, clf, meta["labels"], {k: v for k, v in meta.items()
                                                             if k not in ("kind", "labels")})


def train(ctx: Context, p: BaselinesParams) -> tuple[TfidfClassifier, dict]:
    """Fit on the labelled train split (gold labels) for each ``C`` of ``p.tfidf_c``; keep
    the best on val and save it in ``ctx.out / "tfidf"``."""
    train_split, val, names, metric = ctx.splits["train"], ctx.splits["val"], ctx.names, \
        ctx.metric
    docs = joined(train_split.texts, train_split.pairs)
    word, char = _vectorisers(p)
    x = sparse.hstack([word.fit_transform(docs), char.fit_transform(docs)], format="csr")
    settings = {k: v for k, v in asdict(p).items() if k.startswith("tfidf_")}
    best, scores = None, {}
    for c in p.tfidf_c:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x, train_split.labels)
        model = TfidfClassifier(word, char, clf, names, {**settings, "C": c})
        scores[c] = evaluate.score(model.logits(val.texts, val.pairs), val.labels, metric)
        logger.info("tfidf C=%g: val %s %.4f", c, metric, scores[c])
        if best is None or scores[c] > scores[best.settings["C"]]:
            best = model
    facts = {"features": int(x.shape[1]), "C": best.settings["C"],
             "val_score": round(scores[best.settings["C"]], 6)}
    best.save(ctx.out / KIND)
    return best, facts

