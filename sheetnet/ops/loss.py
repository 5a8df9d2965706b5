"""The losses a training step computes and their gradients, and the cell moves it needs: MSE
(torch.nn.MSELoss()), cross-entropy over the softmax (torch.nn.CrossEntropyLoss(): each row's
-log p[target], their mean, and (p - onehot) / N for the logits), and a step's batch of rows
(heads.StackRows stacks every step's loss into one table).  Both losses are means over the
batch, as torch's defaults.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import ELEMENTWISE, Example, Op, PerCellOnly, Ref, as_array_text, register

Z = np.array([[-3.0, -0.5, 0.0, 0.25], [2.0, 25.0, -1.0, 0.75], [0.5, -2.0, 1.5, -0.25]])
G = np.random.default_rng(17).normal(size=(3, 4))  # (N=3, F=4) predictions


# --- losses ------------------------------------------------------------------------------------
@register
@dataclass(frozen=True)
class MseLoss(Op):
    """(1, 1): mean over every cell of (pred - target)^2, as torch.nn.MSELoss() computes."""
    INPUTS = ("pred", "target")
    pred: Ref
    target: Ref
    array = PerCellOnly("one number from a whole block")

    def reference(self, v):
        return np.array([[((v[self.pred] - v[self.target]) ** 2).mean()]])

    @as_array_text  # a difference of ranges inside SUMPRODUCT: see ArrayText
    def formula(self, r, i, j):
        rows, cols = r.shape(self.pred)
        return f"SUMPRODUCT(({r.all(self.pred)}-{r.all(self.target)})^2)/{rows * cols}"

    @staticmethod
    def example():
        return Example({"pred": G, "target": Z}, MseLoss("pred", "target"),
                       lambda T, p, t: T.nn.functional.mse_loss(p, t).reshape(1, 1))


@register
@dataclass(frozen=True)
class MseGrad(Op):
    """(N, F): the MSE loss's gradient with respect to pred, 2 (pred - target) / (N F)."""
    INPUTS = ("pred", "target")
    pred: Ref
    target: Ref
    array = ELEMENTWISE

    def reference(self, v):
        return 2 * (v[self.pred] - v[self.target]) / v[self.pred].size

    def formula(self, r, i, j):
        rows, cols = r.shape(self.pred)
        return f"2*({r.cell(self.pred, i, j)}-{r.cell(self.target, i, j)})/{rows * cols}"

    @staticmethod
    def example():
        return Example({"pred": G, "target": Z}, MseGrad("pred", "target"), _torch_slope_of_loss(
            lambda T, p, t: T.nn.functional.mse_loss(p, t)))


def _torch_slope_of_loss(loss):
    def run(T, p, t):
        p = p.clone().requires_grad_(True)
        (g,) = T.autograd.grad(loss(T, p, t), p)
        return g
    return run


LOGP = np.log(np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True))  # (3, 4) log-probabilities
TARGET = np.array([[3.0], [0.0], [3.0]])                         # (3, 1) class ids


@register
@dataclass(frozen=True)
class PickedNll(Op):
    """(N, 1): -logp[i, target[i]], each row's loss (target: 0-based class ids, (N, 1))."""
    INPUTS = ("logp", "target")
    logp: Ref
    target: Ref
    array = PerCellOnly("INDEX by a computed id: one cell at a time")

    def reference(self, v):
        ids = np.asarray(v[self.target], dtype=np.float64)[:, 0].astype(int)
        return -v[self.logp][np.arange(len(ids)), ids][:, None]

    def formula(self, r, i, j):
        return "-" + r.index(self.logp, str(i + 1), f"{r.cell(self.target, i, 0)}+1")

    @staticmethod
    def example():
        return Example({"logp": LOGP, "target": TARGET}, PickedNll("logp", "target"),
                       lambda T, lp, t: -lp.gather(1, t.long()))


@register
@dataclass(frozen=True)
class Mean(Op):
    """(1, 1): the mean of every cell: the batch's loss from each row's (CrossEntropyLoss's mean)."""
    INPUTS = ("x",)
    x: Ref
    array = PerCellOnly("one number from a whole block")

    def reference(self, v):
        return np.array([[v[self.x].mean()]])

    def formula(self, r, i, j):
        return f"AVERAGE({r.all(self.x)})"

    @staticmethod
    def example():
        return Example({"x": Z}, Mean("x"), lambda T, x: x.mean().reshape(1, 1))


@register
@dataclass(frozen=True)
class SoftmaxXentGrad(Op):
    """(N, V): the cross-entropy loss's gradient with respect to the logits, (p - onehot) / N,
    p the softmax probabilities (N, V) and target the class ids (N, 1)."""
    INPUTS = ("probs", "target")
    probs: Ref
    target: Ref
    array = PerCellOnly("one formula per cell")

    def reference(self, v):
        p = v[self.probs]
        hot = np.arange(p.shape[1])[None, :] == np.asarray(v[self.target], dtype=np.float64)
        return (p - hot) / p.shape[0]

    def formula(self, r, i, j):
        n = r.shape(self.probs)[0]
        return f"({r.cell(self.probs, i, j)}-IF({r.cell(self.target, i, 0)}={j},1,0))/{n}"

    @staticmethod
    def example():
        probs = np.exp(LOGP)

        def torch(T, p, t):  # the loss's gradient at logits whose softmax is p
            z = p.log().clone().requires_grad_(True)
            (g,) = T.autograd.grad(T.nn.functional.cross_entropy(z, t[:, 0].long()), z)
            return g
        return Example({"probs": probs, "target": TARGET}, SoftmaxXentGrad("probs", "target"),
                       torch)


# --- batches -------------------------------------------------------------------------------------
@register
@dataclass(frozen=True)
class TakeRows(Op):
    """(len(rows), F): rows of x in the order given (a step's minibatch of the data)."""
    INPUTS = ("x",)
    x: Ref
    rows: tuple[int, ...]
    array = PerCellOnly("each cell is a plain reference to one cell of x")

    def reference(self, v):
        return np.asarray(v[self.x])[list(self.rows)].copy()

    def formula(self, r, i, j):
        return r.cell(self.x, self.rows[i], j)

    @staticmethod
    def example():
        return Example({"x": Z}, TakeRows("x", (2, 0, 2)), lambda T, x: x[[2, 0, 2]])
