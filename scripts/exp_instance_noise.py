"""Instance noise keeps the minimax gradient alive (Arjovsky & Bottou 2017, Section 3).

    python scripts/exp_instance_noise.py                 # 7 minutes on one CPU thread (+3 the first time: stages)

The measurement of exp_vanishing_gradients.py, against the frozen generator whose minimax
gradient vanished there (--stage, default the early one), with Gaussian noise of std sigma
added to every critic input, real and fake, both while the fresh critic trains and when the
generator's gradient is measured (`instance-noise:base=minimax,sigma=S` at the start of its
schedule). Noise makes the two distributions overlap, so the optimal critic is no longer
perfect and the gradient should stay.
"""

from __future__ import annotations

import ganzoo
from shared import STAGES, arguments, decay_table, plot_traces, publish, staged_generators, trace, trace_arguments

NAME = "exp-instance-noise"
SIGMAS = (0.0, 0.3, 1.0, 3.0)  # 0: the plain minimax cost, for comparison


def main() -> None:
    parser = trace_arguments()
    parser.add_argument("--stage", choices=STAGES, default="early", help="which frozen generator to train against")
    args = arguments(__doc__, parser)
    frozen = staged_generators(args)[args.stage]
    traces = {}
    for sigma in SIGMAS:
        loss = ganzoo.create_loss("instance-noise", base="minimax", sigma=sigma)
        traces[f"sigma = {sigma:g}"] = trace(args, frozen, loss, f"sigma {sigma:g}")
    table = decay_table(traces, "noise on critic inputs")
    fig = plot_traces(traces, f"minimax cost with instance noise, generator of step {frozen.step:,}")
    data = {"cost": "minimax", "generator_step": frozen.step, "traces": traces}
    publish(args, NAME, fig, table, data, "minimax generator gradient norm against critic iterations, for several noise levels")


if __name__ == "__main__":
    main()
