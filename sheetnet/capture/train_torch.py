"""The PyTorch twin of a training workbook: the same steps by torch.autograd and torch.optim in
float64, on the examples and rates read back from the workbook (verify's ``trace``)."""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..errors import SheetnetError
from ..ir import graph as ir
from ..ir.reference import cell_text


def _scalar(leaves: dict, name: str, default: float) -> float:
    if name not in leaves:
        return default
    return float(np.asarray(leaves[name], dtype=np.float64).flat[0])


def _optimizer(kind: str, params, leaves: dict):
    lr = _scalar(leaves, "train.lr", 0.01)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if kind == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=_scalar(leaves, "train.momentum", 0.9))
    betas = (_scalar(leaves, "train.beta1", 0.9), _scalar(leaves, "train.beta2", 0.999))
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=_scalar(leaves, "train.eps", 1e-8))


def _ids(words, vocab: list[str]) -> np.ndarray:
    index = {w: i for i, w in enumerate(vocab)}
    out = []
    for w in np.asarray(words, dtype=object)[:, 0]:
        word = cell_text(w)
        if word not in index:
            raise SheetnetError(f"'{word}' is not in the vocabulary: cannot trace it")
        out.append(index[word])
    return np.array(out)


# what each optimizer keeps per weight, as torch.optim names it -> the workbook's node prefix
_STATE = {"sgd": {}, "momentum": {"momentum_buffer": "buf"},
          "adam": {"exp_avg": "m", "exp_avg_sq": "v"}}


def trace_training(model, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """Every step's loss, gradients, optimizer state and new weights, and the trained model's
    predictions and loss, keyed by the workbook nodes' refs (capture/train.py)."""
    spec = graph.meta["training"]
    text = spec["loss"] == "cross-entropy"
    model = copy.deepcopy(model).double()
    params = dict(model.named_parameters())
    weights = {n.name: n for n in graph.of_type(ir.Param)}
    missing = [n.op.source for n in weights.values() if n.op.source not in params]
    if missing:
        raise SheetnetError(f"the model has no parameter {missing[0]}: cannot trace training")
    if text:
        x = torch.as_tensor(_ids(leaves["data.x"], graph.meta["vocab"]))
        y = torch.as_tensor(_ids(leaves["data.y"], graph.meta["vocab"]))
    else:
        x = torch.as_tensor(np.asarray(leaves["data.x"], dtype=np.float64))
        x = x[:, 0].round().long() if spec.get("ids") else x  # an Embedding's ids (N,)
        y = torch.as_tensor(np.asarray(leaves["data.y"], dtype=np.float64))
    loss_fn = (lambda p, t: torch.nn.functional.cross_entropy(p, t)) if text else \
        (lambda p, t: torch.nn.functional.mse_loss(p, t))
    opt = _optimizer(spec["optimizer"], list(params.values()), leaves)
    rows, batch = spec["rows"], spec.get("batch") or spec["rows"]
    out: dict[str, np.ndarray] = {}
    for k in range(1, spec["steps"] + 1):
        take = [((k - 1) * batch + i) % rows for i in range(batch)]
        opt.zero_grad()
        loss = loss_fn(model(x[take]), y[take])
        loss.backward()
        out[f"s{k}.loss"] = np.array([[loss.item()]])
        for name, node in weights.items():
            out[f"s{k}.grad.{name}"] = _cells(params[node.op.source].grad, node)
        opt.step()
        for name, node in weights.items():
            p = params[node.op.source]
            for key, prefix in _STATE[spec["optimizer"]].items():
                out[f"s{k}.{prefix}.{name}"] = _cells(opt.state[p][key], node)
            out[f"s{k}.new.{name}"] = _cells(p, node)
    with torch.no_grad():
        pred = model(x)
        out["final.pred"] = pred.numpy().reshape(len(x), -1).copy()
        out["final.loss"] = np.array([[loss_fn(pred, y).item()]])
    return out


def _cells(t: torch.Tensor, node: ir.Node) -> np.ndarray:
    # a weight's tensor in its node's layout: a bias (out,) as its (out, 1) column
    return t.detach().numpy().reshape(node.shape).copy()
