"""The sqrt net's workbook: the generic MLP sheets plus the seed's "walk" from x to y."""
from __future__ import annotations

import numpy as np
from torch import nn

from ..ir import graph as ir
from .mlp import capture_mlp, lower_sequential

WALK_STEP = 0.25  # grid spacing of the Walk sheet


def capture_sqrt(model: nn.Sequential, meta: dict, x: float = 2.0) -> ir.Graph:
    """Input dashboard (x, y, sqrt(x), error), one sheet per layer, and the Walk sheet."""
    g = capture_mlp(model, meta, batch=np.array([[x]]))
    g.meta["architecture"] = "sqrt"
    g.add("sqrt_x", ir.Sqrt("x"), (1, 1), "Input", title="", col_labels=["sqrt(x)"], beside=True)
    g.add("error", ir.Sub("y", "sqrt_x"), (1, 1), "Input", title="", col_labels=["error"],
          beside=True)
    _walk(g, model, meta.get("x_range", [0.0, 10.0]))
    return g


def _walk(g: ir.Graph, model: nn.Sequential, x_range) -> None:
    lo, hi = float(x_range[0]), float(x_range[1])
    grid = np.arange(lo, hi + WALK_STEP / 2, WALK_STEP)[:, None]  # (G, 1)
    sheet = "Walk"
    g.sheet_flow[sheet] = "right"
    x = g.add("walk.x", ir.Const(grid), grid.shape, sheet, title="x", col_labels=["x"])
    y = lower_sequential(g, model, x, prefix="walk.", sheet=sheet, in_labels=["x"],
                         with_params=False)
    for name in g.nodes:  # the hidden layers go right of x | y | sqrt(x) | error | breakpoints
        if name.startswith("walk.") and name != x:
            g.nodes[name].order = 10
    g.nodes[y].order, g.nodes[y].title = 1, "net y"
    g.add("walk.sqrt", ir.Sqrt(x), grid.shape, sheet, title="sqrt(x)", col_labels=["√x"], order=2)
    g.add("walk.error", ir.Sub(y, "walk.sqrt"), grid.shape, sheet, title="error",
          col_labels=["y-√x"], order=3)
    steps = [n.name for n in g.nodes.values() if n.sheet == sheet and isinstance(n.op, ir.Step)]
    bps = breakpoints(model, lo, hi)
    if bps:
        g.add("walk.breakpoints", ir.Const(np.array([[b] for b, _ in bps])), (len(bps), 1), sheet,
              title="ReLU switches",
              row_labels=[who for _, who in bps], col_labels=["x"], order=4)
    g.meta["walk"] = {"x": "walk.x", "y": y, "sqrt": "walk.sqrt", "steps": steps}
    g.meta["charts"] = [{"sheet": sheet, "title": "The net's y against sqrt(x)", "x": "walk.x",
                         "series": [y, "walk.sqrt"], "names": ["net y", "sqrt(x)"],
                         "below": "walk.x"}]


def breakpoints(model: nn.Sequential, lo: float, hi: float) -> list[tuple[float, str]]:
    """Exact x in (lo, hi) where some ReLU switches, walking the piecewise-linear regions.

    Within a region every pre-activation is affine in x, z = alpha*x + beta; the next breakpoint
    is the nearest root beyond the current x.  Returns [(x, "L<k>.n<i> on|off"), ...] in order.
    """
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    params = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in linears]
    found, x = [], lo
    for _ in range(10_000):  # a bound on regions; a tiny net has far fewer
        affine = _affine_at(params, x + 1e-12)
        nxt, who = hi, []
        for k, (alpha, beta) in enumerate(affine, start=1):
            for i, (a, b) in enumerate(zip(alpha, beta)):
                if a != 0:
                    root = -b / a
                    if x + 1e-12 < root < nxt - 1e-12:
                        nxt, who = root, [(k, i, a > 0)]
                    elif abs(root - nxt) <= 1e-12 and root < hi:
                        who.append((k, i, a > 0))
        if nxt >= hi:
            return found
        found += [(float(nxt), f"L{k}.n{i + 1} {'on' if up else 'off'}") for k, i, up in who]
        x = nxt
    return found


def _affine_at(params, x: float) -> list[tuple[np.ndarray, np.ndarray]]:
    # z_k = alpha_k * x + beta_k for every layer, with the ReLU pattern fixed as it is at x
    alpha, beta, out = np.ones(1), np.zeros(1), []
    for w, b in params:
        za, zb = w @ alpha, w @ beta + b
        out.append((za, zb))
        on = (za * x + zb) > 0
        alpha, beta = np.where(on, za, 0.0), np.where(on, zb, 0.0)
    return out
