"""Plain ReLU MLPs, and the sqrt net: the seed's "2x2 ReLU net" trained on y = sqrt(x)."""
from __future__ import annotations

import time

import torch
from torch import nn

from ..checkpoint import save_checkpoint
from ..errors import SheetnetError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "identity": nn.Identity}
X_RANGE = (0.0, 10.0)  # the sqrt net learns y = sqrt(x) on this interval


def build_mlp(sizes: list[int], activation: str = "relu") -> nn.Sequential:
    """Linear(sizes[0] -> sizes[1]), act, ..., Linear(-> sizes[-1]); no activation after the last."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise SheetnetError(f"MLP sizes must be two or more positive widths, got {sizes}")
    if activation not in ACTIVATIONS:
        raise SheetnetError(f"activation {activation!r} is not supported; supported: "
                            + ", ".join(ACTIVATIONS))
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def mlp_from_checkpoint(payload: dict) -> nn.Sequential:
    """Rebuild the Sequential a sheetnet "mlp" checkpoint describes and load its weights."""
    cfg = payload["config"]
    model = build_mlp(list(cfg["sizes"]), cfg.get("activation", "relu"))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise SheetnetError(f"checkpoint weights do not fit its config: {str(exc).splitlines()[0]}")
    return model


def train_sqrt(hidden: list[int], seed: int = 0, steps: int = 3000, lr: float = 0.01,
               ) -> tuple[nn.Sequential, dict]:
    """Fit y = sqrt(x) on X_RANGE with Adam, full batch, seeded.

    Returns:
        (model, metadata) where metadata records seed, steps, final MSE and time taken.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_mlp([1, *hidden, 1])
    x = torch.rand(512, 1, generator=gen) * (X_RANGE[1] - X_RANGE[0]) + X_RANGE[0]  # (512, 1)
    y = torch.sqrt(x)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()
    meta = {"seed": seed, "steps": steps, "final_mse": loss.item(), "x_range": list(X_RANGE),
            "seconds": round(time.perf_counter() - start, 2), "task": "y = sqrt(x)",
            "trained_by": "sheetnet train sqrt"}
    return model, meta


TARGET_MSE = 0.005  # a run above this got stuck (dead ReLUs): a tiny net then tries the next seed
MAX_TRIES = 8


def train_sqrt_checkpoint(out_path, hidden: list[int], seed: int = 0, steps: int = 3000) -> dict:
    """Train the sqrt net and save it as a sheetnet checkpoint; returns its metadata.

    A 2x2 ReLU net often ends with dead ReLUs (a straight line, no kinks to walk); seeds
    seed, seed+1, ... are tried until one fits to TARGET_MSE, keeping the best (deterministic).
    """
    torch.set_num_threads(1)  # tiny matrices: threads cost more than they save
    best = None
    for k in range(MAX_TRIES):
        model, meta = train_sqrt(hidden, seed=seed + k, steps=steps)
        if best is None or meta["final_mse"] < best[1]["final_mse"]:
            best = (model, meta)
        if meta["final_mse"] <= TARGET_MSE:
            break
    model, meta = best
    meta["seed_asked"], meta["tries"] = seed, k + 1
    config = {"sizes": [1, *hidden, 1], "activation": "relu"}
    save_checkpoint(out_path, "mlp", config, model.state_dict(), meta)
    return meta
