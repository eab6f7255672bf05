"""Training throughput: images per second of full training steps (Eq. 22 loss, backward, Adam,
EMA excluded) for presets × batch sizes × memory layouts × precisions, printed side by side.

    python benchmarks/training_throughput.py --presets first-cpu first-paper --batch-sizes 32 64 \
        --precisions fp32 bf16 --layouts contiguous channels_last

``--compile`` also times ``torch.compile`` of the network (inductor) beside eager mode, with the
seconds its first step took (compilation); on a 2-core AMD EPYC (no AVX-512) it compiled for
9.5 minutes and then trained `first-cpu` (fp32, batch 32, one thread beside a training run) at
0.8–0.95× the speed of eager mode, so training stays eager (the `tiny` preset at batch 4,
bound by Python overhead, gains 1.4×).
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from _bench import LAYOUTS, autocast, build, describe, flops_per_image, machine, print_table, timed
from radiogen.diffusion.loss import EDMLoss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["first-cpu"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[64])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--layouts", nargs="+", default=["contiguous"], choices=list(LAYOUTS),
                   help="memory layout of weights and activations")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile(network) beside eager mode (minutes to compile on a CPU)")
    args = p.parse_args()

    print(f"training throughput on {machine(args.device)}")
    rows = []
    for preset in args.presets:
        net = build(preset, args.device).train()
        gflop = flops_per_image(net) / 1e9
        opt = torch.optim.Adam(net.parameters(), lr=1e-5)
        loss_fn = EDMLoss()
        cfg = net.cfg
        for batch, layout in itertools.product(args.batch_sizes, args.layouts):
            net.to(memory_format=LAYOUTS[layout])
            x = torch.rand(batch, cfg.in_channels, cfg.image_size, cfg.image_size, device=args.device) * 2 - 1
            x = x.contiguous(memory_format=LAYOUTS[layout])
            ctx = torch.nn.functional.one_hot(torch.arange(batch) % max(cfg.context_dim, 1),
                                              max(cfg.context_dim, 1)).float().to(args.device)
            ctx = ctx if cfg.context_dim else None
            rates, compile_s = {}, {}
            nets = {"": net, "compiled ": torch.compile(net)} if args.compile else {"": net}
            for precision, (tag, model) in itertools.product(args.precisions, nets.items()):
                def step():
                    with autocast(args.device, precision):
                        loss = loss_fn(model, x, ctx).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                if tag:  # the first call compiles
                    t = time.perf_counter()
                    step()
                    compile_s[precision] = time.perf_counter() - t
                rates[tag + precision] = batch / timed(step, args.device, args.steps)
            row = {"preset": preset, "model": describe(net), "GFLOP/img-eval": f"{gflop:.2f}",
                   "batch": batch, "layout": layout}
            for key, rate in rates.items():
                row[f"{key} img/s"] = f"{rate:.1f}"
            if len(args.precisions) > 1:
                base = rates[args.precisions[0]]
                row["ratio"] = " ".join(f"{rates[q] / base:.2f}x" for q in args.precisions[1:])
            for precision, seconds in compile_s.items():
                row[f"compiled/eager {precision}"] = f"{rates['compiled ' + precision] / rates[precision]:.2f}x"
                row[f"compile s {precision}"] = f"{seconds:.0f}"
            rows.append(row)
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
