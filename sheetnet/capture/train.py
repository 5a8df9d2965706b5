"""Training unrolled into the workbook: K steps of forward, loss, backpropagation and the
optimizer's update, each a sheet of live formulas, built from the forward graph a preset or the
front end captured (nothing here knows a model family).

    Training   learning rate, momentum, Adam's betas and eps (editable), the loss per step as a
               table and a chart, the loss after training
    Data       the examples (editable): x | y rows, or word | next word pairs with their ids
    Step k     a band of the forward pass on the step's batch (x, each layer, prediction, loss),
               a band of backpropagation (d loss / d each node, output to input), then one band
               per weight: W | dW | the optimizer's state | W after the step, cell for cell
    Trained    the final weights' forward pass on every example, and its loss
    Vocab      (text models) the words and ids the lookups read

The step's weights are the previous step's "after" block (step 1: the starting weights, editable
cells), so every gradient, update and loss downstream follows an edit.  Node refs name what
PyTorch must equal (capture/train_torch.py): ``s<k>.loss``, ``s<k>.grad.<param>``,
``s<k>.<buf|m|v>.<param>``, ``s<k>.new.<param>``, ``final.loss``, ``final.pred``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import SheetnetError
from ..ir import graph as ir
from .backward import backward
from .train_data import TrainData, TrainOptions, placeholder, read_csv, read_word_pairs
from .trace import Captured

TRAINING, DATA, TRAINED = "Training", "Data", "Trained"
HYPER = {  # optimizer -> its editable cells: (node, label, title, bound)
    "sgd": [("train.lr", "lr", "learning rate", {"above": 0.0})],
    "momentum": [("train.lr", "lr", "learning rate", {"above": 0.0}),
                 ("train.momentum", "momentum", "momentum mu: buf = mu buf + dW",
                  {"at_least": 0.0})],
    "adam": [("train.lr", "lr", "learning rate", {"above": 0.0}),
             ("train.beta1", "beta1", "Adam's beta1 (first moment's decay)",
              {"at_least": 0.0, "at_most": 1.0}),
             ("train.beta2", "beta2", "Adam's beta2 (second moment's decay)",
              {"at_least": 0.0, "at_most": 1.0}),
             ("train.eps", "eps", "Adam's eps (added to sqrt(v))", {"above": 0.0})],
}


@dataclass(frozen=True)
class Forward:
    """The part of a captured graph that training replays: input -> ... -> output."""
    out: str                # the model's output node (logits, y)
    input: str              # the one Input it reads (numbers, or words for a text model)
    params: list[str]       # the weights it reads, graph order
    consts: list[str]       # fixed tables it reads (a vocabulary)
    ops: list[str]          # its computed nodes, graph order
    text: bool              # words in, classes out: cross-entropy; else numbers and MSE


def forward_of(fg: ir.Graph) -> Forward:
    """The replayable forward pass of a captured graph.

    Raises:
        SheetnetError: not exactly one output, or not exactly one input feeding it.
    """
    outs = fg.outputs
    if len(outs) != 1:
        raise SheetnetError(f"training needs a model with one output, this one has {len(outs)}")
    need, order = {outs[0].name}, list(fg.nodes)
    for name in reversed(order):
        if name in need:
            need.update(ir.op_inputs(fg.nodes[name].op))
    kept = [n for n in order if n in need]
    at = {n: k for k, n in enumerate(order)}
    missing = [(n, x) for n in kept for x in ir.op_inputs(fg.nodes[n].op) if at[x] > at[n]]
    if missing or fg.meta.get("architecture") == "gpt":
        raise SheetnetError("training is not supported for this model yet (a GPT reads its own "
                            "generated tokens); --train takes MLPs, the sqrt nets and the text "
                            "nets")
    leaves = lambda t: [n for n in kept if isinstance(fg.nodes[n].op, t)]  # noqa: E731
    inputs = leaves(ir.Input)
    if len(inputs) != 1:
        raise SheetnetError(f"training needs a model with one input, this one reads "
                            f"{len(inputs)} ({', '.join(inputs)})")
    text = np.asarray(fg.nodes[inputs[0]].op.default).dtype.kind == "O"
    return Forward(outs[0].name, inputs[0], leaves(ir.Param), leaves(ir.Const),
                   [n for n in kept if not isinstance(fg.nodes[n].op, ir.LEAF_TYPES)], text)


def read_data(fg: ir.Graph, fwd: Forward, path) -> TrainData:
    """The examples for this model from ``path``: word pairs for a text model, else a CSV."""
    if fwd.text:
        return read_word_pairs(path, list(fg.meta.get("vocab") or []))
    return read_csv(path, fg.shape(fwd.input)[1], fg.shape(fwd.out)[1])


def training_capture(captured: Captured, options: TrainOptions,
                     data: TrainData | None = None, rows: int | None = None) -> Captured:
    """The training workbook's graph for a captured model.

    Args:
        captured: the model as a preset or the front end captured it.
        options: steps, optimizer, rates, batch; ``options.data`` the examples' file.
        data: the examples themselves (else read from options.data, or ``rows`` placeholder
            rows when rebuilding a workbook's graph for verify).
    Returns:
        a Captured whose graph is the training workbook and whose trace runs torch.autograd
        and torch.optim (capture/train_torch.py).
    Raises:
        SheetnetError: bad options or data, or an op on the way to the loss with no derivative.
    """
    from .train_torch import trace_training
    options.check()
    fg = captured.graph
    fwd = forward_of(fg)
    if any(getattr(fg.nodes[p].op, "transposed", False) for p in fwd.params):
        raise SheetnetError("training a model with transposed weights (Conv1D) is not supported")
    if data is None:
        data = (read_data(fg, fwd, options.data) if rows is None else
                placeholder(rows, fg.shape(fwd.input)[1], fg.shape(fwd.out)[1],
                            (fg.meta.get("vocab") or ["?"])[0] if fwd.text else None))
    batch = options.batch or data.rows
    if batch > data.rows:
        raise SheetnetError(f"--batch {batch} is more than the {data.rows} examples")
    g = _Build(fg, fwd, data, options, batch).graph()
    return Captured(captured.model, g, trace_training)


class _Build:
    # one training graph: Training and Data sheets, then the steps, then Trained
    def __init__(self, fg, fwd, data, options, batch):
        self.fg, self.fwd, self.data, self.o, self.batch = fg, fwd, data, options, batch
        self.g = ir.Graph(meta=_meta(fg, fwd, data, options, batch))
        self.values: dict[str, np.ndarray] = {}  # every node's value: shapes, as they come

    def add(self, name, op, sheet, **kw) -> str:
        from ..ir.reference import LEAVES
        value = LEAVES[type(op)](op, self.values) if type(op) in LEAVES else op.reference(
            self.values)
        self.values[name] = value
        if kw.get("beside") and "row_labels" not in kw:  # a blank column between blocks
            kw["row_labels"] = [""] * value.shape[0]
        return self.g.add(name, op, value.shape, sheet, **kw)

    def graph(self) -> ir.Graph:
        self._training_inputs()
        self._data()
        weights = {p: p for p in self.fwd.params}
        state: dict = {}
        losses = []
        for k in range(1, self.o.steps + 1):
            weights, loss = self._step(k, weights, state)
            losses.append(loss)
        self._losses(losses)
        self._trained(weights)
        return self.g

    # --- sheets -----------------------------------------------------------------------------
    def _training_inputs(self):
        values = {"train.lr": self.o.lr, "train.momentum": self.o.momentum,
                  "train.beta1": self.o.beta1, "train.beta2": self.o.beta2,
                  "train.eps": self.o.eps}
        for name, label, title, bound in HYPER[self.o.optimizer]:
            self.add(name, ir.Input(np.array([[values[name]]]), **bound), TRAINING,
                     title=f"{title} (type a new value: every step recomputes)",
                     row_labels=[label])

    def _data(self):
        d, fg = self.data, self.fg
        for c in self.fwd.consts:  # fixed tables (the vocabulary) keep their names and sheet
            node = fg.nodes[c]
            self.add(c, node.op, node.sheet, title=node.title, col_labels=node.col_labels,
                     row_labels=node.row_labels, style=node.style, beside=node.beside)
        self.add("data.x", ir.Input(d.x), DATA, title="Data: the examples (edit any cell)",
                 col_labels=d.x_labels)
        if self.fwd.text:  # each word's id, as the model's own lookup finds it (or a message)
            self._ids("data.id", "data.x", "id")
        self.add("data.y", ir.Input(d.y), DATA, title="", col_labels=d.y_labels, beside=True)
        if self.fwd.text:
            self._ids("data.target", "data.y", "next id")
            src = next(c for c in self.fwd.consts if np.asarray(fg.nodes[c].op.value).dtype.kind
                       == "O")
            self.g.meta["lists"] = [{"cell": n, "source": src} for n in ("data.x", "data.y")]
            self.g.meta["run"]["errors"] = ["data.id", "data.target"]

    def _ids(self, name: str, words: str, label: str):
        # the op that reads the model's input (WordId), reading these words instead
        reader = next(self.fg.nodes[n].op for n in self.fwd.ops
                      if self.fwd.input in ir.op_inputs(self.fg.nodes[n].op))
        op = dataclasses.replace(reader, **{_field(reader, self.fwd.input): words})
        self.add(name, op, DATA, title="", col_labels=[label], beside=True, style="integer")

    def _step(self, k: int, weights: dict, state: dict):
        sheet, pre = f"Step {k}", f"s{k}."
        now = {}
        for i, p in enumerate(self.fwd.params):  # this step's weights open their band
            now[p] = p if k == 1 else self.add(f"{pre}{p}", ir.Copy(weights[p]), sheet,
                                                 title=f"{p} at step {k}", order=2 + i,
                                                 **self._labels(p))
            if k == 1:
                self._first_weights(p, sheet, 2 + i)
        x, target = self._batch(k, pre, sheet)
        pred, names = self._replay(x, now, pre, sheet)
        loss, seed = self._loss(pred, target, pre, sheet)
        grads = backward(self.g, names, (pred, seed), list(now.values()), sheet=sheet,
                         prefix=pre, order=1, label=lambda n: n[len(pre):] if
                         n.startswith(pre) else n, add=self.add)
        self._beside_in_bands(pre)
        new = {}
        for i, p in enumerate(self.fwd.params):
            d = self._placed(grads[now[p]], f"{pre}grad.{p}", f"∂loss/∂{p}", sheet, 2 + i, p)
            new[p] = self._update(k, p, now[p], d, state, pre, sheet, 2 + i)
        return new, loss

    def _first_weights(self, p: str, sheet: str, order: int):
        node = self.g.nodes[p] if p in self.g.nodes else None
        if node is None:
            src = self.fg.nodes[p]
            self.add(p, src.op, sheet, title=f"{p} at the start (edit)",
                     order=order, **self._labels(p))

    def _labels(self, p: str) -> dict:
        src = self.fg.nodes[p]
        return {"row_labels": src.row_labels, "col_labels": src.col_labels}

    def _batch(self, k, pre, sheet):
        rows = tuple((((k - 1) * self.batch) + i) % self.data.rows for i in range(self.batch))
        whole = rows == tuple(range(self.data.rows))
        take = (lambda n: ir.Copy(n)) if whole else (lambda n: ir.TakeRows(n, rows))
        label = "all examples" if whole else f"examples {', '.join(str(r + 1) for r in rows[:6])}" \
            + (" ..." if len(rows) > 6 else "")
        x = self.add(f"{pre}x", take("data.x"), sheet, title=f"batch: {label}",
                     col_labels=self.data.x_labels)
        target = "data.target" if self.fwd.text else "data.y"
        t = self.add(f"{pre}target", take(target), sheet, title="target", beside=True,
                     col_labels=["next id"] if self.fwd.text else self.data.y_labels,
                     row_labels=[""] * len(rows), style="integer" if self.fwd.text else "")
        return x, t

    def _replay(self, x: str, weights: dict, pre: str, sheet: str, **kw):
        # the captured forward ops again, reading this step's batch and weights
        m = {self.fwd.input: x, **weights, **{c: c for c in self.fwd.consts}}
        names = []
        for name in self.fwd.ops:
            node = self.fg.nodes[name]
            if type(node.op) is ir.Copy:  # a layer's input shown again: the band shows it once
                m[name] = m[node.op.x]
                continue
            op = _renamed(node.op, m)
            m[name] = self.add(f"{pre}{name}", op, sheet, title=name, col_labels=node.col_labels,
                               style=node.style, beside=True, **kw)
            names.append(m[name])
        return m[self.fwd.out], names

    def _loss(self, pred, target, pre, sheet):
        if not self.fwd.text:  # MSE, torch.nn.MSELoss(): the mean over every cell
            loss = self.add(f"{pre}loss", ir.MseLoss(pred, target), sheet, beside=True,
                            title="loss (MSE)", ref=f"{pre}loss", row_labels=["loss"])
            seed = self.add(f"{pre}dpred", ir.MseGrad(pred, target), sheet, order=1,
                            title="∂loss/∂prediction",
                            col_labels=self.data.y_labels)
            return loss, seed
        # cross-entropy over the softmax, torch.nn.CrossEntropyLoss(): mean of -log p[target]
        vocab = self.fg.nodes[self.fwd.out].col_labels
        mx = self.add(f"{pre}max", ir.RowMax(pred), sheet, beside=True, title="max")
        se = self.add(f"{pre}sumexp", ir.RowSumExp(pred, mx), sheet, beside=True, title="sum exp")
        probs = self.add(f"{pre}probs", ir.Softmax(pred, mx, se), sheet, beside=True,
                         title="p = softmax", col_labels=vocab)
        logp = self.add(f"{pre}logp", ir.LogSoftmax(pred, mx, se), sheet, beside=True,
                        title="log p", col_labels=vocab)
        nll = self.add(f"{pre}nll", ir.PickedNll(logp, target), sheet, beside=True,
                       title="-log p[target]")
        loss = self.add(f"{pre}loss", ir.Mean(nll), sheet, beside=True, ref=f"{pre}loss",
                        title="loss (cross-entropy)", row_labels=["loss"])
        seed = self.add(f"{pre}dpred", ir.SoftmaxXentGrad(probs, target), sheet, order=1,
                        title="∂loss/∂logits = (p - onehot)/N",
                        col_labels=vocab)
        return loss, seed

    def _beside_in_bands(self, pre: str):
        # the backward nodes form one band, right of the loss's gradient
        for node in self.g.nodes.values():
            if node.name.startswith(f"{pre}grad") and node.order == 1:
                node.beside = True
                node.row_labels = [""] * node.shape[0]

    def _placed(self, grad: str, name: str, title: str, sheet: str, order: int, p: str) -> str:
        # a weight's gradient as its own node beside the weight: a Copy when the gradient is
        # another node's too (the loss's, or read by later backward nodes)
        readers = {x for n in self.g.nodes.values() for x in ir.op_inputs(n.op)}
        if grad in readers or not grad.startswith(name.split("grad.")[0] + "grad"):
            grad = self.add(name, ir.Copy(grad), sheet)
        else:  # its own node: named for the weight (nothing reads it yet)
            node = self.g.nodes.pop(grad)
            node.name, self.values[name] = name, self.values.pop(grad)
            self.g.nodes[name] = node
            grad = name
        node = self.g.nodes[grad]
        node.title, node.order, node.beside, node.ref = title, order, True, name
        node.col_labels, node.row_labels = self.fg.nodes[p].col_labels, [""] * node.shape[0]
        return grad

    def _update(self, k, p, w, d, state, pre, sheet, order):
        o, kw = self.o.optimizer, {"order": order, "beside": True}
        rows = [""] * self.g.shape(w)[0]
        cols = self.fg.nodes[p].col_labels
        if o == "momentum":
            op = ir.Copy(d) if k == 1 else ir.MomentumBuffer(d, state[("buf", p)], "train.momentum")
            state[("buf", p)] = self.add(f"{pre}buf.{p}", op, sheet, ref=f"{pre}buf.{p}",
                                         title="momentum buffer", row_labels=rows,
                                         col_labels=cols, **kw)
            d = state[("buf", p)]
        if o == "adam":
            for key, beta, power in (("m", "train.beta1", 1), ("v", "train.beta2", 2)):
                op = ir.AdamMoment(d, state.get((key, p)), beta, power)
                state[(key, p)] = self.add(f"{pre}{key}.{p}", op, sheet, ref=f"{pre}{key}.{p}",
                                           title="m (first moment)" if key == "m" else
                                           "v (second moment)", row_labels=rows,
                                           col_labels=cols, **kw)
            op = ir.AdamStep(w, state[("m", p)], state[("v", p)], "train.lr", "train.beta1",
                             "train.beta2", "train.eps", k)
        else:
            op = ir.SgdStep(w, d, "train.lr")
        return self.add(f"{pre}new.{p}", op, sheet, ref=f"{pre}new.{p}",
                        title=f"{p} after step {k}", row_labels=rows, col_labels=cols, **kw)

    def _losses(self, losses: list[str]):
        k = len(losses)
        self.add("train.step", ir.Const(np.arange(1, k + 1, dtype=np.float64)[:, None]),
                 TRAINING, title="The loss at each step (before its update)",
                 col_labels=["step"], order=1, style="integer", row_labels=[""] * k)
        self.add("train.loss", ir.StackRows(tuple(losses)), TRAINING, title="", col_labels=["loss"],
                 beside=True, order=1)
        self.g.meta["charts"] = [{"sheet": TRAINING, "title": "Loss per step", "x": "train.step",
                                  "series": ["train.loss"], "names": ["loss"],
                                  "x_title": "step", "below": "train.loss"}]

    def _trained(self, weights: dict):
        x, target = "data.x", "data.target" if self.fwd.text else "data.y"
        pred, _ = self._replay(x, weights, "final.", TRAINED)
        first = next(n for n in self.g.nodes if n.startswith("final."))
        self.g.nodes[first].beside = False
        node = self.g.nodes[pred]
        node.role, node.ref, node.title = "output", "final.pred", "prediction after training"
        if self.fwd.text:
            loss, _ = self._final_ce(pred, target)
        else:
            loss = self.add("final.loss", ir.MseLoss(pred, target), TRAINED, beside=True,
                            title="loss after training", ref="final.loss", row_labels=["loss"])
        self.add("train.final", ir.Copy(loss), TRAINING, order=2, row_labels=["loss"],
                 title="The loss after the last step (sheet Trained)", style="output")

    def _final_ce(self, pred, target):
        s, kw = TRAINED, {"beside": True}
        mx = self.add("final.max", ir.RowMax(pred), s, title="max", **kw)
        se = self.add("final.sumexp", ir.RowSumExp(pred, mx), s, title="sum exp", **kw)
        logp = self.add("final.logp", ir.LogSoftmax(pred, mx, se), s, title="log p", **kw)
        nll = self.add("final.nll", ir.PickedNll(logp, target), s, title="-log p[target]", **kw)
        return self.add("final.loss", ir.Mean(nll), s, title="loss after training",
                        ref="final.loss", row_labels=["loss"], **kw), nll


def _field(op, name: str) -> str:
    # the field of ``op`` holding node ``name``
    return next(f for f in op.INPUTS if getattr(op, f) == name)


def _renamed(op, m: dict):
    # the op reading m[x] for each input x
    changes = {}
    for f in op.INPUTS:
        v = getattr(op, f)
        if isinstance(v, tuple):
            changes[f] = tuple(m[x] for x in v)
        elif v is not None:
            changes[f] = m[v]
    return dataclasses.replace(op, **changes)


def _widths(fg: ir.Graph, fwd: Forward) -> str:
    # "an MLP 1 -> 16 -> 16 -> 1 (3 Linear layers)", from the forward pass's Linear weights (the
    # Guide's own summary would count every step's Linear nodes)
    shapes = [fg.shape(fg.nodes[n].op.w) for n in fwd.ops if isinstance(fg.nodes[n].op, ir.Linear)]
    if not shapes:
        return "as described below"
    widths = [shapes[0][1], *(w[0] for w in shapes)]
    return f"an MLP {' -> '.join(map(str, widths))} ({len(shapes)} Linear layers)"


def _meta(fg: ir.Graph, fwd: Forward, data: TrainData, o: TrainOptions, batch: int) -> dict:
    keep = ("architecture", "vocab", "capture_options", "model_file", "architecture_lines")
    meta = {k: fg.meta[k] for k in keep if k in fg.meta}
    steps = f"{o.steps} step{'s' if o.steps > 1 else ''}"
    meta.update({
        "guide_text": "train",
        "summary": fg.meta.get("summary") or _widths(fg, fwd),
        "training": {"steps": o.steps, "optimizer": o.optimizer, "rows": data.rows,
                     "batch": None if batch == data.rows else batch,
                     "loss": "cross-entropy" if fwd.text else "mse",
                     # the model's forward takes ids (N,) (an Embedding), not rows (N, F)
                     "ids": any(isinstance(fg.nodes[n].op, ir.Lookup) and fg.nodes[n].op.ids ==
                                fwd.input for n in fwd.ops)},
        "guide": {"steps": steps, "optimizer": {"sgd": "SGD", "momentum": "SGD with momentum",
                                                "adam": "Adam"}[o.optimizer],
                  "loss": "cross-entropy over the softmax" if fwd.text else "mean squared error",
                  "rows": data.rows, "batch": batch},
        "run": {"input": "data.x", "report": {"loss": "train.loss", "final_loss": "final.loss"}},
    })
    return meta


def rebuild_training(captured: Captured, spec) -> Captured:
    """A training workbook's graph again, from what its manifest recorded (``meta["training"]``,
    untrusted: checked here), for verify; the examples and rates are the workbook's cells.

    Raises:
        SheetnetError: a record that is not one export writes.
    """
    from .train_data import MAX_ROWS, OPTIMIZERS
    ok = (isinstance(spec, dict) and spec.get("optimizer") in OPTIMIZERS
          and all(type(spec.get(k)) is int for k in ("steps", "rows"))
          and (spec.get("batch") is None or type(spec["batch"]) is int)
          and 1 <= spec["rows"] <= MAX_ROWS)
    if not ok:
        raise SheetnetError("the workbook's training record is damaged")
    options = TrainOptions(steps=spec["steps"], optimizer=spec["optimizer"], batch=spec["batch"])
    return training_capture(captured, options, rows=spec["rows"])


def tolerance_scale(graph: ir.Graph, leaves: dict) -> float:
    """How much verify widens its tolerance for a training workbook: 1, except for Adam, whose
    update lr m / (sqrt(v) + eps) moves by up to lr / eps times a gradient's rounding (~1e-16 of
    the terms it sums, 1e-15 allowed): lr / eps x 1e-15 / 1e-9, at least 1 (lr 0.05, eps 1e-8:
    x 5, so 5e-9)."""
    if graph.meta["training"]["optimizer"] != "adam":
        return 1.0
    lr, eps = (float(np.asarray(leaves[n], dtype=np.float64).flat[0])
               for n in ("train.lr", "train.eps"))
    if not (np.isfinite(lr) and np.isfinite(eps) and eps > 0):
        return 1.0
    return max(1.0, abs(lr) / eps * 1e-6)
