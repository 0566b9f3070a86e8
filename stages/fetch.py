"""Stage ``fetch``: make the raw SST-2 files available.

Params: ``fetch.mirror``, ``fetch.hub_dataset``.
Outs: ``--out`` folder with GLUE ``train.tsv`` and ``dev.tsv``.
Metrics: ``--metrics`` (where the data came from, row counts).
"""

from __future__ import annotations

import logging

from distillery.data import SPLITS, fetch_sst2, read_tsv
from distillery.io import stage_args, write_json
from distillery.params import FetchParams, load_section

logger = logging.getLogger("stages.fetch")


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, ["out", "metrics"], argv)
    p = load_section(args.params, "fetch", FetchParams)
    source = fetch_sst2(args.out, p.mirror, p.hub_dataset)
    rows = {f"{s}_rows": len(read_tsv(f"{args.out}/{s}.tsv")) for s in SPLITS}
    write_json(args.metrics, {"source": source, **rows})
    logger.info("SST-2 from %s: %s", source, rows)


if __name__ == "__main__":
    main()
