"""Smoke tests of ``distillery.measure.plots``: each figure is written as a PNG file."""

from __future__ import annotations

import numpy as np
import pytest

from distillery.measure import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

NAS_ROWS = [{"generation": g, "n_params": 1e6 * (g + 1), "score": 0.6 + 0.1 * g}
            for g in range(3)]
HPO_ROWS = [{"trial": i, "score": s, "best_so_far": b}
            for i, (s, b) in enumerate([(0.5, 0.5), (0.7, 0.7), (0.6, 0.7), (0.8, 0.8)])]
PARETO_ROWS = [{"variant": v, "latency_ms_p50": lat, "accuracy": acc, "macro_f1": acc - 0.1,
                "size_mb": mb}
               for v, lat, acc, mb in [("teacher", 9.0, 0.9, 90), ("int8", 1.5, 0.85, 8)]]


@pytest.mark.parametrize(
    "draw",
    [
        lambda path: plots.nas_scatter(NAS_ROWS, path, NAS_ROWS[-1]),
        lambda path: plots.hpo_trials(HPO_ROWS, path, n_initial=2),
        lambda path: plots.pareto(PARETO_ROWS, path),
        lambda path: plots.pareto(PARETO_ROWS, path, metric="macro_f1"),
        lambda path: plots.confusion({"teacher": np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]]),
                                      "student": np.eye(3) * 4}, ["a", "b", "c"], path),
        lambda path: plots.nas_scatter([{**r, "speedup": 2.0 + r["generation"]}
                                        for r in NAS_ROWS], path,
                                       {**NAS_ROWS[-1], "speedup": 4.0}, min_speedup=3.0),
        lambda path: plots.paradox([{"arch": "2x256", "n_params": 9e6, "short_steps": 50,
                                     "long_steps": 400, "short_mean": 0.5, "long_mean": 0.73},
                                    {"arch": "3x768", "n_params": 46e6, "short_steps": 50,
                                     "long_steps": 400, "short_mean": 0.51,
                                     "long_mean": 0.76}], path),
        lambda path: plots.kd_grid([{"alpha": a, "temperature": t, "accuracy": 0.8 + a / 10}
                                    for a in (0.2, 0.5) for t in (1.0, 2.0) for _ in range(2)],
                                   path),
    ],
    ids=["nas_scatter", "hpo_trials", "pareto", "pareto_macro_f1", "confusion",
         "nas_scatter_speed", "paradox", "kd_grid"],
)
def test_plot_writes_a_png(tmp_path, draw):
    path = tmp_path / "plots" / "figure.png"
    draw(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in path.parent.iterdir()] == ["figure.png"]
