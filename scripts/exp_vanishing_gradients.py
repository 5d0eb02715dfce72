"""Vanishing gradients of the minimax cost (Arjovsky & Bottou 2017, Figure 2).

    python scripts/exp_vanishing_gradients.py            # 5 minutes on one CPU thread (+3 the first time: stages)

A DCGAN generator trained on digits (16x16) with the -log D loss is frozen after 100, 500
and 2,000 steps. Against each, a fresh DCGAN critic trains from scratch (Adam, lr 2e-4,
betas (0.5, 0.999), batch 64), and every 25 critic steps we record the norm of the gradient
of the minimax generator cost E[log(1 - D(G(z)))] with respect to the generator's
parameters, on one batch of 64 latents. As the critic approaches the optimal discriminator,
that gradient goes to zero.
"""

from __future__ import annotations

import ganzoo
from shared import arguments, decay_table, plot_traces, publish, stage_traces, trace_arguments

NAME = "exp-vanishing-gradients"


def main() -> None:
    args = arguments(__doc__, trace_arguments())
    traces = stage_traces(args, ganzoo.create_loss("minimax"))
    table = decay_table(traces, "frozen generator")
    fig = plot_traces(traces, "minimax cost E[log(1 - D(G(z)))]: a critic trained from scratch")
    publish(args, NAME, fig, table, {"cost": "minimax", "traces": traces}, "minimax generator gradient norm against critic iterations")


if __name__ == "__main__":
    main()
