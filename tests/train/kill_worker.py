"""A small training run for the SIGKILL test: python kill_worker.py RUN_DIR [--resume] [--compile]."""

from __future__ import annotations

import sys

import torch
from torch import nn

from cnnlab.train.callbacks import CSVLogger, EarlyStopping, ReduceLROnPlateau
from cnnlab.train.loader import TensorLoader
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import make_optimizer, make_schedule
from cnnlab.train.state import seed_everything
from cnnlab.train.trainer import Trainer

EPOCHS, BATCH, N = 3, 8, 480


def main(run_dir: str, resume: bool, compile: bool = False) -> None:
    torch.set_num_threads(1)
    seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 3, 24, 24, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1].mean((1, 2)) > 0).long()
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.3),
                          nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(16, 4), nn.Softmax(dim=-1))
    train = TensorLoader(x, y, BATCH, shuffle=True, seed=3)
    val = TensorLoader(x[:64], y[:64], 32)
    opt = make_optimizer("adam", model.parameters(), lr=3e-3)
    schedule = make_schedule("cosine", opt, epochs=EPOCHS, steps_per_epoch=len(train))
    callbacks = [CSVLogger(), EarlyStopping(patience=3), ReduceLROnPlateau(patience=1)]
    trainer = Trainer(model, make_loss("sparse_categorical_crossentropy", label_smoothing=0.1), opt,
                      schedule=schedule, metrics=["accuracy", "top5"], callbacks=callbacks, device="cpu",
                      run_dir=run_dir, checkpoint_every=5, verbose=0, compile=compile)
    trainer.fit(train, val, epochs=EPOCHS, resume=resume)


if __name__ == "__main__":
    main(sys.argv[1], "--resume" in sys.argv, "--compile" in sys.argv)
