"""The sqrt net's workbook: the generic MLP sheets plus the seed's piecewise-linear view of it.

A ReLU net of one input is a straight line between the x where some ReLU switches: on each
region y = a*x + b.  The workbook shows that three ways, every number a live formula of the weights:
    Input      x, y, sqrt(x), error; x's region (x from, x to) and the net's line there, a and b,
               from the weights and the on/off pattern at x (verify: PyTorch's dy/dx and y - a*x)
    Regions    every region of [lo, hi]: x from, x to, slope, intercept, on/off pattern; the chart
               (spare rows, for regions an edit adds, read "-")
    Walk       x over a grid plus every region's middle: y, sqrt(x), on/off, z, a
The breakpoints are found layer by layer, as formulas: layer 1's switch where w*x + b = 0; within
each interval the layers before k keep their pattern, so layer k's z is affine there and its
roots -beta/alpha inside the interval are new breakpoints; sorted (LARGE) after each layer.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..ir import graph as ir
from ..ir import reference
from .mlp import capture_mlp, lower_sequential
from .trace import hooked_run

WALK_STEP = 0.25  # spacing of the Walk sheet's even grid (breakpoints and region middles join it)
WORK = "Breakpoints"  # the sheet of the breakpoints' working (the Regions table reads its result)
SPARE_ROWS = 4    # Regions table rows beyond the regions found at export (an edit may add some)


def capture_sqrt(model: nn.Sequential, meta: dict, x: float = 2.0) -> ir.Graph:
    """Input dashboard (x, y, sqrt(x), error, x's region), one sheet per layer, Regions, Walk."""
    g = capture_mlp(model, meta, batch=np.array([[x]]))
    g.meta["architecture"] = "sqrt"
    g.add("sqrt_x", ir.Sqrt("x"), (1, 1), "Input", title="", col_labels=["sqrt(x)"], beside=True)
    g.add("error", ir.Sub("y", "sqrt_x"), (1, 1), "Input", title="", col_labels=["error"],
          beside=True)
    lo, hi = (float(v) for v in meta.get("x_range", [0.0, 10.0]))
    tags = _relu_tags(model)
    if tags is None:  # not all ReLU: no straight pieces to show; the plain grid walk only
        _walk(g, model, _grid(g, lo, hi), lo, hi)
        return g
    _constants(g, lo, hi)
    _here(g, tags)
    bps = _breakpoints(g, tags)
    rows = max(len(breakpoints(model, lo, hi)) + 1 + SPARE_ROWS, 2)
    _regions(g, tags, bps, rows)
    _walk(g, model, _walk_x(g, lo, hi, rows), lo, hi, regions=True)
    _shading(g, tags)
    g.sheets.remove(WORK)  # the working last: a reader meets the table and the walk first
    g.sheets.append(WORK)
    g.meta["print_head"] = {WORK: "range.hi"}  # it prints only its head (the x range)
    return g


def _shading(g: ir.Graph, tags: list[str]) -> None:
    # on/off cells filled where on (every engine draws a plain rule); the Walk's and the Regions
    # table's on/off columns one digit wide, labelled by neuron number; x stays on screen
    narrow = [f"walk.{t}.on" for t in tags] + [f"regions.{t}.shown" for t in tags]
    for name in narrow:
        g.nodes[name].col_labels = [str(i + 1) for i in range(g.shape(name)[1])]
    g.nodes["walk.L1.on"].title = "on/off: layer 1"
    for k, t in enumerate(tags[1:], start=2):
        g.nodes[f"walk.{t}.on"].title = f"layer {k}"
    g.meta["shade"] = narrow + [f"{t}.on" for t in tags] + [f"region.{t}.on" for t in tags]
    g.meta["narrow"] = narrow
    g.meta["freeze_columns"] = {"Walk": "walk.x"}


def _relu_tags(model: nn.Sequential) -> list[str] | None:
    # the hidden layers' node tags (L1, L2, ...) when the net is 1 -> ... -> 1 with ReLU only
    mods = list(model)
    lins = [m for m in mods if isinstance(m, nn.Linear)]
    acts = [m for m in mods if not isinstance(m, (nn.Linear, nn.Identity))]
    if (lins[0].in_features != 1 or lins[-1].out_features != 1 or len(acts) != len(lins) - 1
            or not all(type(a) is nn.ReLU for a in acts) or any(m.bias is None for m in lins)):
        return None
    return [f"L{k}" for k in range(1, len(lins))]


def _constants(g: ir.Graph, lo: float, hi: float) -> None:
    sheet = WORK
    g.add("range.lo", ir.Const(np.array([[lo]])), (1, 1), sheet, row_labels=["x from"],
          title="The working behind the Regions table (printed: only this head). The x range "
                "shown (the range the net was trained on)")
    g.add("range.hi", ir.Const(np.array([[hi]])), (1, 1), sheet, row_labels=["x to"], title="")
    g.add("one", ir.Const(np.array([[1.0]])), (1, 1), sheet, row_labels=["1"], order=90,
          title="constants the formulas use")
    g.add("half", ir.Const(np.array([[0.5]])), (1, 1), sheet, row_labels=["1/2"], order=90)


def _line(g: ir.Graph, tags: list[str], at: str, prefix: str, sheet: str, ons=None,
          show: bool = True) -> tuple[str, str]:
    """Slope and intercept of y on the region of each x in ``at`` (N, 1), by the weights and the
    on/off pattern there: a ReLU that is on passes its z = alpha*x + beta on, one that is off 0.

    ons: the on/off nodes (N, n_k) to use (default: computed from alpha*x + beta).
    Returns the (N, 1) slope and intercept nodes.
    """
    n = g.shape(at)[0]
    kw = {"order": 50} if show else {"order": 95}
    alpha = g.add(f"{prefix}L1.alpha", ir.Transpose("L1.W"), (1, g.shape("L1.W")[0]), sheet,
                  title="Layer 1: z = w*x + b, so the slope of each z is its weight w",
                  col_labels=_neurons(g, "L1"), row_labels=["slope"], **kw) \
        if f"{prefix}L1.alpha" not in g.nodes else f"{prefix}L1.alpha"
    beta = g.add(f"{prefix}L1.beta", ir.Transpose("L1.b"), (1, g.shape("L1.b")[0]), sheet,
                 title="... and the intercept of each z is its bias b", col_labels=_neurons(g, "L1"), row_labels=["intercept"], **kw) \
        if f"{prefix}L1.beta" not in g.nodes else f"{prefix}L1.beta"
    for k, tag in enumerate(tags):
        width = g.shape(f"{tag}.W")[0]
        labels = _neurons(g, tag)
        if k:
            alpha = g.add(f"{prefix}{tag}.alpha", ir.Linear(alpha, f"{tag}.W", None), (n, width),
                          sheet, title=f"Layer {k + 1}: slope of z = (slopes passed on) . W",
                          col_labels=labels, row_labels=["slope"] * n if show else None, **kw)
            beta = g.add(f"{prefix}{tag}.beta", ir.Linear(beta, f"{tag}.W", f"{tag}.b"),
                         (n, width), sheet, title="intercept of z = (intercepts passed on) . W + b",
                         col_labels=labels, row_labels=["intercept"] * n if show else None, **kw)
        if ons is None:
            ax = g.add(f"{prefix}{tag}.ax", ir.Times(alpha, at), (n, width), sheet, **kw)
            z = g.add(f"{prefix}{tag}.zmid", ir.Add(ax, beta), (n, width), sheet, **kw)
            on = g.add(f"{prefix}{tag}.on", ir.Step(z), (n, width), sheet, style="flag",
                       title=f"Layer {k + 1} ReLU on? (1 = on)", col_labels=labels, **kw)
        else:
            on = g.add(f"{prefix}{tag}.on", ir.Copy(ons[k]), (n, width), sheet, style="flag",
                       title=f"Layer {k + 1}: which ReLUs are on at x (1 = on, from the "
                             f"Layer {k + 1} sheet)", col_labels=labels,
                       row_labels=["on?"] * n, **kw)
        alpha = g.add(f"{prefix}{tag}.alpha_on", ir.Times(on, alpha), (n, width), sheet,
                      title="what the ReLUs pass on: slope (0 where off)" if show else "",
                      col_labels=labels, row_labels=["slope"] * n if show else None, **kw)
        beta = g.add(f"{prefix}{tag}.beta_on", ir.Times(on, beta), (n, width), sheet,
                     title="... and intercept (0 where off)" if show else "", col_labels=labels,
                     row_labels=["intercept"] * n if show else None, **kw)
    slope = g.add(f"{prefix}slope", ir.Linear(alpha, "out.W", None), (n, 1), sheet,
                  title="Output: y = a*x + b, a = (slopes passed on) . W" if show else "",
                  col_labels=["a"], row_labels=["slope"] * n if show else None, **kw)
    icpt = g.add(f"{prefix}intercept", ir.Linear(beta, "out.W", "out.b"), (n, 1), sheet,
                 title="b = (intercepts passed on) . W + b" if show else "",
                 col_labels=["b"], row_labels=["intercept"] * n if show else None, **kw)
    return slope, icpt


def _neurons(g: ir.Graph, tag: str) -> list[str]:
    return [f"n{i + 1}" for i in range(g.shape(f"{tag}.W")[0])]


def _here(g: ir.Graph, tags: list[str]) -> None:
    """x's region and the net's line there, on the Input sheet, with how a and b are computed."""
    sheet = "Input"
    slope, icpt = _line(g, tags, "x", "region.", sheet, ons=[f"{t}.on" for t in tags])
    g.nodes[slope].ref, g.nodes[icpt].ref = "region.slope", "region.intercept"
    g.add("region.a", ir.Copy(slope), (1, 1), sheet, order=20, col_labels=["a (slope)"],
          title="The net at this x is a straight line: y = a*x + b (a = dy/dx; how a and b "
                "come from the weights: below)", style="output")
    g.add("region.b", ir.Copy(icpt), (1, 1), sheet, order=20, col_labels=["b (intercept)"],
          style="output", beside=True, title="")
    ax = g.add("region.ax", ir.Times("region.a", "x"), (1, 1), sheet, order=20, beside=True,
               title="", col_labels=["a*x"])
    g.add("region.y", ir.Add(ax, "region.b"), (1, 1), sheet, order=20, col_labels=["a*x + b = y"],
          beside=True, title="")


def _breakpoints(g: ir.Graph, tags: list[str]) -> str:
    """Every x in [lo, hi] where some ReLU switches, sorted, as a (1, K) row of formulas; K is
    fixed by the sizes (2 + one candidate per neuron per interval); unused candidates are hi."""
    sheet = WORK
    pts = g.add("bp.0", ir.Concat(("range.lo", "range.hi")), (1, 2), sheet,
                title="start: the ends of the range", col_labels=["lo", "hi"])
    for k, tag in enumerate(tags, start=1):
        size = g.shape(pts)[1]
        p = f"bp{k}."
        left = g.add(f"{p}left", ir.Transpose(g.add(f"{p}l", ir.View(pts, (0, 1), (0, size - 1)),
                                                     (1, size - 1), sheet)),
                     (size - 1, 1), sheet, title=f"layer {k}: the intervals so far",
                     col_labels=["x from"])
        right = g.add(f"{p}right", ir.Transpose(g.add(f"{p}r", ir.View(pts, (0, 1), (1, size)),
                                                       (1, size - 1), sheet)),
                      (size - 1, 1), sheet, col_labels=["x to"], beside=True, title="")
        mid = g.add(f"{p}mid", ir.Times(g.add(f"{p}sum", ir.Add(left, right), (size - 1, 1),
                                              sheet, beside=True, title="", col_labels=["sum"]),
                                        "half"), (size - 1, 1), sheet, beside=True, title="",
                    col_labels=["middle"])
        # z of layer k is alpha*x + beta on each interval (the earlier layers' pattern fixed)
        alpha, beta = _affine_to(g, tags[:k], mid, p, sheet)
        width = g.shape(f"{tag}.W")[0]
        shape = (size - 1, width)
        safe = g.add(f"{p}safe", ir.Where(alpha, alpha, "one"), shape, sheet,
                     title="slope, 1 where 0 (no root)")
        root = g.add(f"{p}root", ir.Over(g.add(f"{p}minus", ir.Negate(beta), shape, sheet,
                                               title="-intercept"), safe), shape, sheet,
                     title=f"layer {k}: x where z = 0 (-intercept / slope)")
        inside = g.add(f"{p}inside", ir.Times(
            g.add(f"{p}after", ir.Step(_sub(g, root, left, f"{p}rl", shape, sheet)), shape,
                  sheet, title="root > x from"),
            g.add(f"{p}before", ir.Step(_sub(g, right, root, f"{p}rr", shape, sheet)), shape,
                  sheet, title="root < x to")), shape, sheet, title="inside its interval")
        inside = g.add(f"{p}valid", ir.Where(alpha, inside, "zero"), shape, sheet,
                       title="inside and slope not 0")
        cand = g.add(f"{p}cand", ir.Where(inside, root, "range.hi"), shape, sheet,
                     title="new breakpoints (hi where none)")
        flat = g.add(f"{p}flat", ir.Reshape(cand, (1, shape[0] * shape[1])),
                     (1, shape[0] * shape[1]), sheet, title="")
        both = g.add(f"{p}all", ir.Concat((pts, flat)), (1, size + shape[0] * shape[1]), sheet,
                     title="old and new, unsorted")
        pts = _sorted(g, both, f"{p}sorted", sheet, f"after layer {k}: sorted")
    # the distinct values first: a repeat becomes hi, sorted again
    size = g.shape(pts)[1]
    prev = g.add("bp.prev", ir.View(pts, (0, 1), (0, size - 1)), (1, size - 1), sheet)
    cur = g.add("bp.cur", ir.View(pts, (0, 1), (1, size)), (1, size - 1), sheet)
    new = g.add("bp.new", ir.Step(_sub(g, cur, prev, "bp.gap", (1, size - 1), sheet)),
                (1, size - 1), sheet, title="larger than the one before (1) or a repeat (0)")
    kept = g.add("bp.kept", ir.Where(new, cur, "range.hi"), (1, size - 1), sheet,
                 title="repeats replaced by hi")
    first = g.add("bp.first", ir.View(pts, (0, 1), (0, 1)), (1, 1), sheet)
    both = g.add("bp.distinct", ir.Concat((first, kept)), (1, size), sheet, title="")
    g.add("bp.count", ir.RowSum(new), (1, 1), "Regions", order=-5, row_labels=["regions"],
          title="How many straight pieces (regions) the net has in this range (a row of the table "
                "from its end to its end is spare, for regions an edit adds)", style="integer")
    return _sorted(g, both, "bp.final", sheet, "the breakpoints, each once, then hi repeated")


def _sub(g: ir.Graph, a: str, b: str, name: str, shape, sheet: str) -> str:
    # a - b, untitled: a step of a longer working
    return g.add(name, ir.Sub(a, b), shape, sheet, title="")


def _sorted(g: ir.Graph, row: str, name: str, sheet: str, title: str) -> str:
    # ascending: the largest of -row, negated (LARGE by rank)
    size = g.shape(row)[1]
    neg = g.add(f"{name}.neg", ir.Negate(row), (1, size), sheet, title="")
    top = g.add(f"{name}.top", ir.RowLargest(neg, size), (1, size), sheet, title="")
    return g.add(name, ir.Negate(top), (1, size), sheet, title=title)


def _affine_to(g: ir.Graph, tags: list[str], at: str, p: str, sheet: str) -> tuple[str, str]:
    # slope and intercept (N, n_k) of the last of ``tags``' z on the interval of each x in at
    n = g.shape(at)[0]
    alpha, beta = "bp.L1.alpha", "bp.L1.beta"
    if alpha not in g.nodes:
        width = g.shape("L1.W")[0]
        g.add(alpha, ir.Transpose("L1.W"), (1, width), sheet, title="layer 1: slope of z (w)")
        g.add(beta, ir.Transpose("L1.b"), (1, width), sheet, title="intercept of z (b)")
    for k, tag in enumerate(tags):
        width = g.shape(f"{tag}.W")[0]
        if k:
            alpha = g.add(f"{p}{tag}.alpha", ir.Linear(alpha, f"{tag}.W", None), (n, width),
                          sheet, title=f"layer {k + 1}: slope of z")
            beta = g.add(f"{p}{tag}.beta", ir.Linear(beta, f"{tag}.W", f"{tag}.b"), (n, width),
                         sheet, title="intercept of z")
        if k == len(tags) - 1:
            break
        ax = g.add(f"{p}{tag}.ax", ir.Times(alpha, at), (n, width), sheet, title="")
        z = g.add(f"{p}{tag}.z", ir.Add(ax, beta), (n, width), sheet, title="z at the middle")
        on = g.add(f"{p}{tag}.on", ir.Step(z), (n, width), sheet, style="flag", title="on?")
        alpha = g.add(f"{p}{tag}.alpha_on", ir.Times(on, alpha), (n, width), sheet, title="")
        beta = g.add(f"{p}{tag}.beta_on", ir.Times(on, beta), (n, width), sheet, title="")
    if "zero" not in g.nodes:
        g.add("zero", ir.Const(np.array([[0.0]])), (1, 1), WORK, row_labels=["0"],
              order=90)
    return alpha, beta


def _regions(g: ir.Graph, tags: list[str], bps: str, rows: int) -> None:
    """The Regions table: the first ``rows`` intervals of the distinct breakpoints.  The rest of
    the row is hi repeated: such a row is empty ("from hi to hi") and its cells read "-" (live
    formulas: an edited weight that adds regions fills them)."""
    sheet, work = "Regions", WORK
    left = g.add("regions.from.x", ir.Transpose(g.add("regions.l", ir.View(bps, (0, 1), (0, rows)),
                                                      (1, rows), work)), (rows, 1), work,
                 order=96, title="each region's x from and x to", col_labels=["x from"])
    right = g.add("regions.to.x", ir.Transpose(g.add("regions.r", ir.View(bps, (0, 1),
                                                                          (1, rows + 1)),
                                                     (1, rows), work)), (rows, 1), work,
                  order=96, beside=True, title="", col_labels=["x to"])
    live = g.add("regions.live", ir.Step(_sub(g, right, left, "regions.width", (rows, 1), work)),
                 (rows, 1), work, order=96, beside=True, title="", col_labels=["a region?"])
    g.add("regions.from", ir.ShownIf(live, left), (rows, 1), sheet, order=-4,
          title="Regions: y = a*x + b on each", col_labels=["x from"],
          row_labels=[str(k + 1) for k in range(rows)])
    g.add("regions.to", ir.ShownIf(live, right), (rows, 1), sheet, order=-4, beside=True,
          title="", col_labels=["x to"])
    mid = g.add("regions.mid", ir.Times(g.add("regions.sum", ir.Add(left, right), (rows, 1),
                                              work, order=96, title="x from + x to"), "half"),
                (rows, 1), work, order=96, title="the middle of each region")
    slope, icpt = _line(g, tags, mid, "regions.", work, show=False)
    for name, label in ((slope, "a (slope)"), (icpt, "b (intercept)")):
        g.add(f"{name}.shown", ir.ShownIf(live, name), (rows, 1), sheet, order=-4, beside=True,
              title="", col_labels=[label])
    for tag in tags:
        g.add(f"regions.{tag}.shown", ir.ShownIf(live, f"regions.{tag}.on"),
              g.shape(f"regions.{tag}.on"), sheet, order=-4, beside=True, style="flag",
              title=f"layer {tag[1:]} on/off", col_labels=_neurons(g, tag))
    # x's own region (Input): from the largest breakpoint below x (lo if none) to the next one
    below = g.add("region.below", ir.Step(_sub(g, "x", bps, "region.gap", g.shape(bps), work)),
                  g.shape(bps), work, order=97, title="breakpoint < x?")
    lows = g.add("region.lows", ir.Where(below, bps, "range.lo"), g.shape(bps), work, order=97,
                 title="the breakpoints below x (lo for the others)")
    start = g.add("region.from", ir.RowMax(lows), (1, 1), "Input", order=15,
                  col_labels=["x from"],
                  title="Your x lies in this region: between two x where a ReLU switches (the "
                        "Regions sheet lists them all)")
    after = g.add("region.after", ir.Step(_sub(g, bps, start, "region.gap2", g.shape(bps), work)),
                  g.shape(bps), work, order=97, title="breakpoint > x from?")
    neg = g.add("region.negbps", ir.Negate(bps), g.shape(bps), work, order=97, title="")
    nhi = g.add("region.neghi", ir.Negate("range.hi"), (1, 1), work, order=97, title="")
    highs = g.add("region.highs", ir.Where(after, neg, nhi), g.shape(bps), work, order=97,
                  title="-(the breakpoints after x from)")
    top = g.add("region.negto", ir.RowMax(highs), (1, 1), work, order=97, title="")
    g.add("region.to", ir.Negate(top), (1, 1), "Input", order=15, col_labels=["x to"],
          beside=True, title="")


def _grid(g: ir.Graph, lo: float, hi: float) -> str:
    grid = np.arange(lo, hi + WALK_STEP / 2, WALK_STEP)[:, None]  # (G, 1)
    return g.add("walk.x", ir.Const(grid), grid.shape, "Walk", title="x", col_labels=["x"])


def _walk_x(g: ir.Graph, lo: float, hi: float, rows: int) -> str:
    # the even grid and every region's middle, sorted: each region shows.  A spare row of the
    # Regions table (no region) has no middle: it adds a point halfway between two grid points
    # instead, so the Walk never repeats an x
    grid = np.arange(lo, hi + WALK_STEP / 2, WALK_STEP)[None, :]  # (1, G)
    sheet = WORK
    even = g.add("walk.grid", ir.Const(grid), grid.shape, sheet, title="the even grid of x")
    halves = grid[:, np.minimum(np.arange(rows), grid.shape[1] - 2)].T + WALK_STEP / 2  # (rows, 1)
    spare = g.add("walk.halves", ir.Const(halves), halves.shape, sheet,
                  title="halfway points, for the table's spare rows")
    points = g.add("walk.mid_or_half", ir.Where("regions.live", "regions.mid", spare),
                   (rows, 1), sheet, title="each region's middle (a halfway point where none)")
    mids = g.add("walk.mids", ir.Transpose(points), (1, rows), sheet, title="")
    # not the breakpoints themselves: there some z is 0 up to rounding, its on/off a coin toss
    both = g.add("walk.points", ir.Concat((even, mids)), (1, grid.shape[1] + rows), sheet,
                 title="the grid and every region's middle")
    xs = _sorted(g, both, "walk.sorted", sheet, "sorted")
    return g.add("walk.x", ir.Transpose(xs), (g.shape(xs)[1], 1), "Walk", title="x",
                 col_labels=["x"])


def _walk(g: ir.Graph, model: nn.Sequential, x: str, lo: float, hi: float,
          regions: bool = False) -> None:
    sheet = "Walk"
    g.sheet_flow[sheet] = "right"
    n = g.shape(x)[0]
    first = len(g.nodes)
    y = lower_sequential(g, model, x, prefix="walk.", sheet=sheet, in_labels=["x"],
                         with_params=False)
    for name in list(g.nodes)[first:]:  # on/off right after x | y | sqrt | error, z and a last
        g.nodes[name].order = 5 if isinstance(g.nodes[name].op, ir.Step) else 10
    g.nodes[y].order, g.nodes[y].title = 1, "net y"
    g.add("walk.sqrt", ir.Sqrt(x), (n, 1), sheet, title="sqrt(x)", col_labels=["√x"], order=2)
    g.add("walk.error", ir.Sub(y, "walk.sqrt"), (n, 1), sheet, title="error",
          col_labels=["y-√x"], order=3)
    steps = [nd.name for nd in g.nodes.values() if nd.sheet == sheet and isinstance(nd.op, ir.Step)]
    g.meta["walk"] = {"x": x, "y": y, "sqrt": "walk.sqrt", "steps": steps}
    where = {"sheet": "Regions", "below": "regions.from"} if regions else \
        {"sheet": sheet, "below": x}
    g.meta["charts"] = [{"title": "The net's y against sqrt(x)", "x": x, "series": [y, "walk.sqrt"],
                         "names": ["net y", "sqrt(x)"], **where}]


# --- PyTorch ------------------------------------------------------------------------------------
def trace_sqrt(model: nn.Module, graph: ir.Graph, leaves: dict) -> dict[str, np.ndarray]:
    """PyTorch float64 values: the layers at the Input x; y's slope dy/dx (autograd) and
    intercept y - x*dy/dx there; the Walk's layers at its x (the IR reference's sorted grid)."""
    model = model.double()
    out = hooked_run(model, leaves["x"])
    x = torch.as_tensor(np.asarray(leaves["x"], dtype=np.float64)).requires_grad_(True)
    y = model(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    out["region.slope"] = slope.detach().numpy().copy()
    out["region.intercept"] = (y - x * slope).detach().numpy().copy()
    walk_x = leaves.get("walk.x")
    if walk_x is None:  # computed: the breakpoints' formulas, evaluated by the IR reference
        walk_x = reference.evaluate(graph, inputs=leaves)["walk.x"]
    out.update(hooked_run(model, walk_x, prefix="walk."))
    return out


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
