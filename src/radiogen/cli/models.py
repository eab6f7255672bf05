"""``radiogen models``: list the bundled models and presets; export a checkpoint as a model file."""

from __future__ import annotations

import sys

from radiogen.cli import CommandError
from radiogen.cli.checks import (check_output_file, check_output_folder, guidance, integer,
                                  number)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "models", help="list bundled models and presets; export a checkpoint",
        description="Without an action: list the trained models shipped with radiogen and the "
                    "training presets. `radiogen models export RUN --out FILE` writes the EMA "
                    "weights of a run or checkpoint as one model file (safetensors with the config "
                    "in its metadata), optionally in half precision, for sharing or bundling.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    e = actions.add_parser("export", help="write a run's EMA weights as one model file",
                           description="Write the EMA weights of a run folder, checkpoint folder "
                                       "or model file as one safetensors model file.")
    e.add_argument("source", help="run folder, checkpoint folder or model file")
    e.add_argument("--out", required=True, help="model file to write (.safetensors)")
    e.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32",
                   help="precision of the stored weights (they are read back as fp32)")
    e.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    e.add_argument("--class-guidance", type=guidance, metavar="CLASS=OMEGA,...",
                   help="class models: record guidance strengths ω for some classes in the file, "
                        "used by `radiogen sample` instead of the default ω when none is given, "
                        "e.g. 'Bent=0.3'")
    e.add_argument("--sampler", help="record the sampler that `radiogen sample` uses with this "
                                     "model when none is given (default: that of the model's "
                                     "kind, or the one the source records), e.g. dpmpp-2m")
    e.add_argument("--steps", type=integer(2), help="record the number of noise levels N used "
                                                    "when none is given")
    e.add_argument("--churn", type=number(0), metavar="S_CHURN",
                   help="record S_churn used when none is given (heun-sde only)")
    e.add_argument("--guide-model", metavar="FILE",
                   help="record autoguidance by this weaker model of the same data and context "
                        "(a model file in --out's folder or below it: the file records its path "
                        "from there, so keep the two together), used when none is given")
    e.add_argument("--autoguidance", type=number(0), metavar="OMEGA_A",
                   help="record the autoguidance strength ω_a (default 1 with --guide-model; 0 "
                        "removes a guide the source records)")
    h = actions.add_parser(
        "ema", help="rebuild EMA weights of any length from a run's snapshots (post-hoc EMA)",
        description="Post-hoc EMA (Karras et al. 2024): from the power-function EMA snapshots "
                    "of a run trained with training.ema_profiles, write the weights averaged "
                    "with each relative EMA length σ_rel (the width of the average as a "
                    "fraction of the run's length; EDM2 finds 0.05–0.15 best) as model files "
                    "OUT/ema-<σ_rel>.safetensors, to sample and compare. Each is a weighted "
                    "average of the snapshots whose averaging profile is closest to the one "
                    "asked for; how close is printed (exact for a tracked length, rough far "
                    "outside them).")
    h.add_argument("run", help="run folder with ema-snapshots/")
    h.add_argument("--sigma-rel", type=number(0, 0.288, exclusive_minimum=True), nargs="+",
                   required=True,
                   help="relative EMA lengths to rebuild, e.g. 0.05 0.08 0.12")
    h.add_argument("--step", type=integer(0),
                   help="rebuild as of this step (default: the newest snapshot)")
    h.add_argument("--out", required=True, help="folder for the model files")
    p.set_defaults(func=run)


def run(args) -> int:
    if getattr(args, "action", None) == "ema":
        from radiogen.api import posthoc_ema
        from radiogen.training.checkpoint import read_model_header
        from radiogen.training.posthoc_ema import describe
        check_output_folder(args.out)
        print(f"radiogen models: {describe(args.run)}")
        for path in posthoc_ema(args.run, args.sigma_rel, args.out, args.step):
            error = read_model_header(path)[1]["ema"]["profile_error"]
            print(f"radiogen models: wrote {path} (its averaging profile {error:.1%} from the one "
                  "asked for, in L2)")
            if error > 0.05:
                print(f"radiogen models: warning: {path.name} is an approximate average: σ_rel "
                      "outside the run's tracked lengths is rebuilt only roughly", file=sys.stderr)
        return 0
    if getattr(args, "action", None) == "export":
        from radiogen.api import export_model
        check_output_file(args.out)
        if args.class_guidance is not None and (not isinstance(args.class_guidance, dict)
                                                or None in args.class_guidance):
            raise CommandError("--class-guidance takes CLASS=ω items only, e.g. 'Bent=0.3'")
        try:
            sampling = {key: getattr(args, key) for key in ("sampler", "steps", "churn",
                                                            "guide_model", "autoguidance")
                        if getattr(args, key) is not None}
            path = export_model(args.source, args.out, args.dtype, ema=not args.raw,
                                class_guidance=args.class_guidance, sampling=sampling)
        except (ValueError, FileNotFoundError) as err:
            raise CommandError(str(err)) from None
        print(f"radiogen models: wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
        return 0
    from radiogen.api import bundled_models
    from radiogen.config import list_presets, load_preset
    from radiogen.training.checkpoint import read_model_header
    models = bundled_models()
    print("bundled models:" if models else "bundled models: none installed yet "
          "(train one with `radiogen train`, then sample with --checkpoint)")
    for name, path in sorted(models.items()):
        meta = read_model_header(path)[1]
        print(f"  {name:16s} {_context_summary(meta)}{_stretch_summary(meta)}"
              f"{_sampling_summary(meta)}  {path}")
    print("training presets:")
    for name in list_presets():
        print(f"  {name:16s} {load_preset(name).description[:100]}")
    return 0


def _context_summary(meta: dict) -> str:
    """What a model file is conditioned on, in a few words (from its metadata)."""
    if meta.get("conditions"):
        return "conditions: " + ", ".join(
            f"{c['name']} ({c['lo']:.3g}–{c['hi']:.3g} {c['unit']})".replace(" )", ")")
            for c in meta["conditions"])
    if meta.get("kind") == "class":
        return "classes: " + " ".join(meta.get("class_names", []))
    return "conditions: peak_flux" if meta.get("kind") == "flux" else "unconditional"


def _stretch_summary(meta: dict) -> str:
    """The pixel range a model file was trained on, if not the linear one (`data.stretch`)."""
    from radiogen.data.transforms import recorded_stretch
    a = recorded_stretch(meta)
    return f"; pixels asinh-stretched, a = {a:g}" if a else ""


def _sampling_summary(meta: dict) -> str:
    """The sampler defaults a model file's metadata records (`export --sampler/--steps/--churn/
    --guide-model/--autoguidance`), if any."""
    recorded = meta.get("sampling", {})
    if not recorded:
        return ""
    parts = [recorded.get("sampler", ""), f"N {recorded['steps']}" if "steps" in recorded else "",
             f"S_churn {recorded['churn']:g}" if "churn" in recorded else ""]
    sampler = " ".join(part for part in parts if part)
    guide = (f"; autoguidance ω_a {recorded['autoguidance']:g} by {recorded['guide_model']}"
             if "guide_model" in recorded else "")
    return (f"; sampler: {sampler}" if sampler else "") + guide
