"""Sampling throughput: images and network evaluations per second of the Heun sampler
(Algorithm 1) with batched classifier-free guidance, for presets × batch sizes × precisions,
printed side by side. Random weights: speed does not depend on what the network learned.

    python benchmarks/sampling_throughput.py --presets first-cpu first-paper --precisions fp32 bf16
"""

from __future__ import annotations

import argparse

import torch

from _bench import autocast, build, describe, flops_per_image, machine, print_table, timed
from radiogen.diffusion import GuidedDenoiser, karras_sigmas, sample_heun


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["first-cpu"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[16])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=25, help="noise levels N (Heun: 2N-1 evaluations)")
    p.add_argument("--guidance", type=float, default=0.75, help="ω (> 0 doubles the batch)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()

    print(f"sampling throughput on {machine(args.device)}: Heun, N={args.steps} "
          f"({2 * args.steps - 1} evaluations per image), ω={args.guidance}")
    sigmas = karras_sigmas(args.steps).to(args.device)
    rows = []
    for preset in args.presets:
        net = build(preset, args.device).eval()
        gflop = flops_per_image(net) / 1e9
        cfg = net.cfg
        for batch in args.batch_sizes:
            ctx = (torch.eye(cfg.context_dim)[torch.arange(batch) % cfg.context_dim].to(args.device)
                   if cfg.context_dim else None)
            x0 = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=args.device) * 80
            rates = {}
            for precision in args.precisions:
                D = GuidedDenoiser(net, ctx, args.guidance)

                def run():
                    with torch.inference_mode(), autocast(args.device, precision):
                        sample_heun(D, x0, sigmas)
                seconds = timed(run, args.device, args.repeats, warmup=0)
                evals_per_image = D.n_evals / args.repeats * (2 if args.guidance and ctx is not None else 1)
                rates[precision] = (batch / seconds, batch * evals_per_image / seconds)
            row = {"preset": preset, "model": describe(net), "GFLOP/img-eval": f"{gflop:.2f}", "batch": batch}
            for precision in args.precisions:
                row[f"{precision} img/s"] = f"{rates[precision][0]:.2f}"
                row[f"{precision} img-eval/s"] = f"{rates[precision][1]:.1f}"
            if len(args.precisions) > 1:
                base = rates[args.precisions[0]][0]
                row["ratio"] = " ".join(f"{rates[q][0] / base:.2f}x" for q in args.precisions[1:])
            rows.append(row)
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
