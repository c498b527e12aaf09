"""A fine-tuning run for the SIGKILL test: python transfer_worker.py RUN_DIR DATA PRETRAINED [--resume].

3 epochs: the head alone for 1 (the backbone frozen), then everything at 0.1 x the head's rate,
SGD with momentum and weight decay, a state every 3 steps.
"""

from __future__ import annotations

import sys

import torch

from cnnlab.train.api import fit


def main(run_dir: str, data: str, pretrained: str, resume: bool) -> None:
    torch.set_num_threads(1)
    if resume:
        fit(resume=run_dir, verbose=0)
        return
    fit(data, None, out=run_dir, epochs=3, batch_size=4, verbose=0, checkpoint_every=3,
        **{"transfer.pretrained": pretrained, "transfer.freeze_epochs": 1, "transfer.backbone_lr_mult": 0.1,
           "optimizer.name": "sgd", "optimizer.lr": 0.05, "optimizer.momentum": 0.9,
           "optimizer.weight_decay": 1e-3, "schedule.name": "cosine"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], "--resume" in sys.argv)
