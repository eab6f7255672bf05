"""Sampling throughput: images and network evaluations per second, for models × samplers ×
evaluation budgets × precisions × memory layouts, with batched classifier-free guidance, printed
side by side.

Presets run with random weights (speed does not depend on what the network learned); bundled
models (``--models``) run with their own weights.

    python benchmarks/sampling_throughput.py --models first-class --presets first-paper \\
        --samplers heun dpmpp-2m --evals 49 10 --precisions fp32 bf16 \\
        --layouts contiguous channels_last
"""

from __future__ import annotations

import argparse
import itertools

import torch

from _bench import LAYOUTS, autocast, build, describe, flops_per_image, machine, print_table, timed
from radiogen.diffusion import (ODE_SAMPLERS, SAMPLERS, GuidedDenoiser, evaluations, karras_sigmas,
                                steps_for_evaluations)


def networks(args):
    for preset in args.presets:
        yield preset, build(preset, args.device).eval()
    if args.models:
        from radiogen import api
        for name in args.models:
            yield name, api.load_model(name, args.device).denoiser.eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="*", default=[], help="presets, random weights")
    p.add_argument("--models", nargs="*", default=["first-class"], help="bundled models")
    p.add_argument("--samplers", nargs="+", default=["heun", "dpmpp-2m"], choices=list(ODE_SAMPLERS))
    p.add_argument("--evals", nargs="+", type=int, default=[49, 10],
                   help="network evaluations per image (per guidance half)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[16])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--layouts", nargs="+", default=["contiguous", "channels_last"],
                   choices=list(LAYOUTS), help="memory layout of weights and activations")
    p.add_argument("--guidance", type=float, default=0.75, help="ω (> 0 doubles the batch)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    torch.set_flush_denormal(True)

    print(f"sampling throughput on {machine(args.device)}, ω={args.guidance}")
    rows = []
    for name, net in networks(args):
        gflop = flops_per_image(net) / 1e9
        cfg = net.cfg
        for batch in args.batch_sizes:
            ctx = (torch.eye(cfg.context_dim)[torch.arange(batch) % cfg.context_dim].to(args.device)
                   if cfg.context_dim else None)
            x0 = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=args.device) * 80
            for layout, sampler in itertools.product(args.layouts, args.samplers):
                net.to(memory_format=LAYOUTS[layout])
                for n_evals in args.evals:
                    steps = steps_for_evaluations(sampler, n_evals)
                    sigmas = karras_sigmas(steps).to(args.device)
                    rates = {}
                    for precision in args.precisions:
                        D = GuidedDenoiser(net, ctx, args.guidance)

                        def run():
                            with torch.inference_mode(), autocast(args.device, precision):
                                SAMPLERS[sampler](D, x0, sigmas)
                        seconds = timed(run, args.device, args.repeats, warmup=1)
                        passes = D.n_network_evals / (args.repeats + 1)
                        rates[precision] = (batch / seconds, batch * passes / seconds)
                    row = {"model": name, "size": describe(net), "GFLOP/img-eval": f"{gflop:.2f}",
                           "batch": batch, "layout": layout, "sampler": sampler,
                           "evals": evaluations(sampler, steps)}
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
