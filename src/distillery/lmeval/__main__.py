"""``python -m distillery.lmeval``: score a classifier with lm-eval (see :mod:`.cli`).

The environment is made offline before lm-eval and ``datasets`` load: the task's data are a
local jsonl and the model a local folder or file.
"""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from distillery.core.io import run_main  # noqa: E402
from distillery.lmeval.cli import main  # noqa: E402

if __name__ == "__main__":
    run_main(main)
