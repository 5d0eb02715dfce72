"""The -log D alternative: gradients that grow, and get noisier (Arjovsky & Bottou 2017, Figure 3).

    python scripts/exp_logd_instability.py               # 6 minutes on one CPU thread (+3 the first time: stages)

The measurement of exp_vanishing_gradients.py (the same frozen generators after 100, 500
and 2,000 steps, a fresh critic trained from scratch against each) with the non-saturating
generator cost -E[log D(G(z))]. Over windows of 200 critic iterations we report the mean
and the variance of the gradient norm: the paper saw both grow as the critic improves.
"""

from __future__ import annotations

import ganzoo
from ganzoo.diagnostics import window_stats
from ganzoo.pictures import new_figure
from shared import arguments, markdown_table, publish, stage_traces, trace_arguments

NAME = "exp-logd-instability"
WINDOW_STEPS = 200  # critic iterations per window


def plot(traces: dict[str, dict], window: int):
    fig, (norms, variances) = new_figure(ncols=2, figsize=(10, 4))
    for label, found in traces.items():
        steps = found["critic_steps"][1:]  # the first measurement is the untrained critic's
        line = norms.plot(steps, found["grad_norms"][1:], alpha=0.35)[0]
        means, var = window_stats(found["grad_norms"][1:], window)
        centres = [steps[i * window + window // 2] for i in range(len(means))]
        norms.plot(centres, means, color=line.get_color(), lw=2, label=label)
        variances.plot(centres, var, "o-", color=line.get_color(), label=label)
    norms.set_title("-log D cost: gradient norm (thin) and its window mean (thick)", fontsize=10)
    variances.set_title(f"variance of the gradient norm over windows of {window * traces_every(traces)} critic steps", fontsize=10)
    for ax, ylabel in ((norms, "norm of the generator's gradient"), (variances, "variance")):
        ax.set_yscale("log")
        ax.set_xlabel("critic iterations")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return fig


def traces_every(traces: dict[str, dict]) -> int:
    steps = next(iter(traces.values()))["critic_steps"]
    return steps[1] - steps[0]


def main() -> None:
    args = arguments(__doc__, trace_arguments())
    loss = ganzoo.create_loss("nonsaturating")
    traces = stage_traces(args, loss)
    measured = len(next(iter(traces.values()))["grad_norms"]) - 1
    window = max(1, min(WINDOW_STEPS // traces_every(traces), measured // 2))  # measurements per window, >= 2 windows
    rows, stats = [], {}
    for label, found in traces.items():
        means, variances = window_stats(found["grad_norms"][1:], window)
        stats[label] = {"window_means": means.tolist(), "window_variances": variances.tolist()}
        rows.append((
            label, f"{means[0]:.3g} ± {variances[0] ** 0.5:.2g}", f"{means[-1]:.3g} ± {variances[-1] ** 0.5:.2g}",
            f"{means[-1] / means[0]:.2g}x", f"{variances[-1] / variances[0]:.2g}x" if variances[0] > 0 else "-",
        ))  # fmt: skip
    span = window * traces_every(traces)
    table = markdown_table(
        ("frozen generator", f"norm, first {span} critic steps (mean ± std)", f"norm, last {span} critic steps",
         "growth of the mean", "growth of the variance"),
        rows,
    )  # fmt: skip
    data = {"cost": "nonsaturating", "window_critic_steps": span, "traces": traces, "windows": stats}
    publish(args, NAME, plot(traces, window), table, data, "-log D generator gradient norm and its variance against critic iterations")


if __name__ == "__main__":
    main()
