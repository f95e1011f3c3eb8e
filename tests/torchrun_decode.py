"""Decode a data set under torchrun with ``load_images_on_node``; each rank pickles what it got.

Used by tests/test_distributed.py: ``torchrun --standalone --nproc-per-node 2 torchrun_decode.py DATA SIZE PREFIX``.
"""

import pickle
import sys
from pathlib import Path

import torch

from reportgen.data.layouts import read_dataset
from reportgen.model.distributed import load_images_on_node, process_group, ranks_from_env

data, size, prefix = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ranks = ranks_from_env()
with process_group(ranks, torch.device("cpu")):
    images = load_images_on_node(read_dataset(data), size, ranks, progress=False)
    got = (images.pixels.tobytes(), images.infos, images.rel_paths, images.skipped, images.labels.tolist())
    got += (images.metadata, images.given_splits, images.source)
    Path(f"{prefix}{ranks.rank}.pkl").write_bytes(pickle.dumps(got))
