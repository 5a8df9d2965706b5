"""Plain MLPs (nn.Sequential of Linear and activations), and the sqrt net: the seed's "2x2 ReLU
net" trained on y = sqrt(x).

An "mlp" checkpoint's config is either {"sizes": [...], "activation": "relu"} (one activation
between every two Linear layers) or {"layers": [...]}: one plain dict per child of the Sequential,
in order, so any Sequential of supported layers (mixed activations, LeakyReLU slopes, GELU forms,
Linear without bias, an activation after the last Linear) rebuilds with its own state-dict keys:

    {"type": "linear", "in": 3, "out": 4, "bias": true}   {"type": "relu"}   {"type": "tanh"}
    {"type": "sigmoid"}   {"type": "gelu", "approximate": "none" | "tanh"}
    {"type": "leaky_relu", "slope": 0.01}   {"type": "identity"}   {"type": "silu"}
    {"type": "softplus", "beta": 1.0, "threshold": 20.0}   {"type": "elu", "alpha": 1.0}
"""
from __future__ import annotations

import time

import torch
from torch import nn

from ..checkpoint import save_checkpoint
from ..errors import SheetnetError
from .fit import (MAX_LAYERS, build_on_meta, config_choice, config_int, config_ints,
                  config_number, load_fitted)

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "identity": nn.Identity}
X_RANGE = (0.0, 10.0)  # the sqrt net learns y = sqrt(x) on this interval


def build_mlp(sizes: list[int], activation: str = "relu") -> nn.Sequential:
    """Linear(sizes[0] -> sizes[1]), act, ..., Linear(-> sizes[-1]); no activation after the last.

    Raises:
        SheetnetError: sizes that are not two or more widths, or an unknown activation.
    """
    sizes = config_ints(sizes, "sizes", "mlp config", shortest=2)
    config_choice(activation, "activation", "mlp config", tuple(ACTIVATIONS))
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


# layer spec "type" -> how to build it from the spec (checked by _checked_spec first)
_BUILD = {
    "linear": lambda d: nn.Linear(d["in"], d["out"], bias=d.get("bias", True)),
    "relu": lambda d: nn.ReLU(), "tanh": lambda d: nn.Tanh(), "sigmoid": lambda d: nn.Sigmoid(),
    "gelu": lambda d: nn.GELU(approximate=d.get("approximate", "none")),
    "leaky_relu": lambda d: nn.LeakyReLU(d.get("slope", 0.01)),
    "identity": lambda d: nn.Identity(),
    "silu": lambda d: nn.SiLU(),
    "softplus": lambda d: nn.Softplus(d.get("beta", 1.0), d.get("threshold", 20.0)),
    "elu": lambda d: nn.ELU(d.get("alpha", 1.0)),
}
# module class -> its spec (the inverse of _BUILD)
_SPEC = {
    nn.Linear: lambda m: {"type": "linear", "in": m.in_features, "out": m.out_features,
                          "bias": m.bias is not None},
    nn.ReLU: lambda m: {"type": "relu"}, nn.Tanh: lambda m: {"type": "tanh"},
    nn.Sigmoid: lambda m: {"type": "sigmoid"},
    nn.GELU: lambda m: {"type": "gelu", "approximate": m.approximate},
    nn.LeakyReLU: lambda m: {"type": "leaky_relu", "slope": float(m.negative_slope)},
    nn.Identity: lambda m: {"type": "identity"},
    nn.SiLU: lambda m: {"type": "silu"},
    nn.Softplus: lambda m: {"type": "softplus", "beta": float(m.beta),
                            "threshold": float(m.threshold)},
    nn.ELU: lambda m: {"type": "elu", "alpha": float(m.alpha)},
}
LAYER_TYPES = tuple(_SPEC)   # the torch.nn classes a plain MLP may hold
SUPPORTED_LAYERS = ", ".join(t.__name__ for t in LAYER_TYPES)


def build_sequential(layers: list[dict]) -> nn.Sequential:
    """The Sequential a list of layer specs (see the module docstring) describes, freshly initialised.

    Raises:
        SheetnetError: naming the layer, the key and the bad value.
    """
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise SheetnetError(f"mlp config: layers must be a list of 1 to {MAX_LAYERS:,} layer "
                            "specs")
    return nn.Sequential(*(_BUILD[spec["type"]](spec)
                           for spec in (_checked_spec(i, s) for i, s in enumerate(layers))))


def _checked_spec(i: int, spec: object) -> dict:
    # every value a layer spec may hold, checked before a module is built from it
    kind = spec.get("type") if isinstance(spec, dict) else None
    if not isinstance(kind, str) or kind not in _BUILD:
        raise SheetnetError(f"mlp config: layer {i}: type {kind!r} is not supported; "
                            "supported: " + ", ".join(_BUILD))
    where = f"mlp config: layer {i} ({kind})"
    if kind == "linear":
        config_int(spec.get("in"), "in", where)
        config_int(spec.get("out"), "out", where)
        config_choice(spec.get("bias", True), "bias", where, (True, False))
    elif kind == "gelu":
        config_choice(spec.get("approximate", "none"), "approximate", where, ("none", "tanh"))
    elif kind == "leaky_relu":
        config_number(spec.get("slope", 0.01), "slope", where)
    elif kind == "softplus":
        if config_number(spec.get("beta", 1.0), "beta", where) == 0:  # log(1 + e^0x) / 0
            raise SheetnetError(f"{where}: beta must not be 0")
        config_number(spec.get("threshold", 20.0), "threshold", where)
    elif kind == "elu":
        config_number(spec.get("alpha", 1.0), "alpha", where)
    return spec


def layer_specs(seq: nn.Module) -> list[dict]:
    """The layer specs of a Sequential (the inverse of :func:`build_sequential`).

    Raises:
        SheetnetError: a child that is not a supported layer, named with its path.
    """
    if type(seq) is not nn.Sequential:
        raise SheetnetError(f"model {type(seq).__name__} is not supported; supported: an "
                            f"nn.Sequential of {SUPPORTED_LAYERS}")
    specs = []
    for path, mod in seq.named_children():
        if type(mod) not in _SPEC:
            raise SheetnetError(f"layer {type(mod).__name__} at {path} is not supported; "
                                f"supported: {SUPPORTED_LAYERS}")
        specs.append(_SPEC[type(mod)](mod))
    return specs


# short name -> the layer's one number a name may carry after ":" (its key, default)
_NAMED_ARG = {"leaky_relu": ("slope", 0.01), "elu": ("alpha", 1.0), "softplus": ("beta", 1.0)}


def activation_spec(name: str) -> dict:
    """A layer spec from a short name: relu, tanh, sigmoid, gelu, gelu_tanh, leaky_relu[:slope],
    silu, softplus[:beta], elu[:alpha], identity."""
    base, _, arg = name.strip().lower().partition(":")
    if base == "gelu_tanh" and not arg:
        return {"type": "gelu", "approximate": "tanh"}
    if base == "gelu" and not arg:
        return {"type": "gelu", "approximate": "none"}
    if base in _NAMED_ARG:
        key, default = _NAMED_ARG[base]
        try:
            return {"type": base, key: float(arg) if arg else default}
        except ValueError:
            raise SheetnetError(f"{base} {key} must be a number, got {arg!r}") from None
    if base in ("relu", "tanh", "sigmoid", "silu", "identity") and not arg:
        return {"type": base}
    raise SheetnetError(f"activation {name!r} is not supported; supported: relu, tanh, sigmoid, "
                        "gelu, gelu_tanh, leaky_relu[:slope], silu, softplus[:beta], elu[:alpha], "
                        "identity")


def mlp_from_checkpoint(payload: dict) -> nn.Sequential:
    """Rebuild the Sequential a sheetnet "mlp" checkpoint describes, holding its weights.

    The config is checked and the module built on the meta device before any weight memory is
    used (see models/fit.py).

    Raises:
        SheetnetError: a bad config value, or weights that do not fit the config.
    """
    cfg = payload["config"]
    if not isinstance(cfg, dict) or not ("layers" in cfg or "sizes" in cfg):
        raise SheetnetError("mlp config must be a dict with 'layers' or 'sizes'")
    if "layers" in cfg:
        model = build_on_meta(lambda: build_sequential(cfg["layers"]))
    else:
        model = build_on_meta(lambda: build_mlp(cfg["sizes"], cfg.get("activation", "relu")))
    return load_fitted(model, payload["state_dict"], "mlp checkpoint")


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
