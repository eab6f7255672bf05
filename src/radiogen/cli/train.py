"""``radiogen train``: train or resume a diffusion model."""

from __future__ import annotations

from pathlib import Path

from radiogen.cli.checks import COUNT, POSITIVE, check_output_folder
from radiogen.config import Config, list_presets, load_preset


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train or resume a diffusion model",
        description="Train a denoiser (paper Section 4.2: Eq. 22 loss, Adam, EMA, mixed precision, "
                    "flips/rot90, 90/10 validation split). Writes checkpoints (safetensors), "
                    "config.json, metrics.csv and TensorBoard logs into --out. With --set "
                    "training.objective=consistency it consistency-tunes a trained model instead "
                    "(experimental; see the README). For several GPUs "
                    "or nodes run it under torchrun, e.g. `torchrun --nproc-per-node 2 -m radiogen "
                    "train ...`.")
    p.add_argument("--preset", default=None,
                   help=f"preset name ({', '.join(list_presets())}) or a config JSON file "
                        "(default: first-cpu; with --resume, the run's own config.json)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and logs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. training.batch_size=64 or data.source=DATA.h5 "
                        "(repeatable)")
    p.add_argument("--data", help="train on this HDF5 store instead of the preset's data "
                                  "(shorthand for --set data.source=PATH)")
    p.add_argument("--init-from", metavar="WEIGHTS",
                   help="start from these weights instead of random ones (a bundled model name, "
                        "a model file or a run folder with the same architecture), e.g. to "
                        "fine-tune; shorthand for --set training.init_from=WEIGHTS")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest checkpoint in --out, exactly where it stopped")
    p.add_argument("--max-steps", type=COUNT, help="stop after this many steps of this call")
    p.add_argument("--max-minutes", type=POSITIVE,
                   help="stop cleanly, with a checkpoint written, at the first step that ends "
                        "after this many minutes of wall-clock time (resume later with --resume)")
    p.add_argument("--device", default="auto", help="auto (default: a GPU if there is one), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    from radiogen import api
    saved = Path(args.out) / "config.json"
    if args.preset is None and args.resume and saved.is_file():
        cfg = Config.from_json(saved)          # resume with the settings the run started with
    else:
        cfg = load_preset(args.preset or "first-cpu")
    overrides = list(args.overrides)
    if args.data:
        overrides.append(f"data.source={args.data}")
    if args.init_from:
        overrides.append(f"training.init_from={args.init_from}")
    if overrides:
        cfg = cfg.override(overrides)
    if args.print_config:
        print(cfg.to_json())
        return 0
    check_output_folder(args.out)
    ckpt = api.train(cfg, args.out, resume=args.resume, device=args.device,
                     progress=not args.no_progress, max_steps=args.max_steps,
                     max_minutes=args.max_minutes)
    print(f"radiogen train: last checkpoint {ckpt}")
    return 0
