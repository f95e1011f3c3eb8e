"""``reportgen`` under torchrun with a planted failure in rank 1's decode stage (see tests/test_distributed.py).

Run as ``torchrun --nproc-per-node 2 tests/torchrun_failing_rank.py run DATA --out OUT``.
"""

import os

from reportgen import pipeline
from reportgen.cli import main
from reportgen.errors import DataError

if os.environ.get("RANK") == "1":

    def _unreadable(*_args: object, **_kwargs: object) -> None:
        raise DataError("planted failure: rank 1 cannot read its images")

    pipeline.load_images_on_node = _unreadable

main()
