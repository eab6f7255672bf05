"""``radiogen classifier train|test|sweep``: the morphology classifier of Section 5.3."""

from __future__ import annotations

from pathlib import Path

from radiogen.cli import CommandError
from radiogen.cli.checks import (COUNT, POSITIVE, SEED, check_output_file, check_output_folder,
                                  integer, number)
from radiogen.cli.evaluate import HelpFormatter


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "classifier", help="train and test the ResNet-18 morphology classifier (Section 5.3)",
        description="The ResNet-18 classifier (FRI, FRII, Compact, Bent) used to judge class "
                    "conditioning; weights are stored as safetensors.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_train(sub)
    _register_test(sub)
    _register_sweep(sub)
    _register_export(sub)
    _register_train_guide(sub)


def _register_train(sub) -> None:
    p = sub.add_parser("train", help="train on the FIRST splits (Table 6)",
                       description="Train on the FIRST train split with the paper's "
                                   "augmentations and Table 6 hyperparameters, keep the "
                                   "best-validation weights, and report accuracy on the test split.",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="weights file to write (.safetensors)")
    p.add_argument("--zip", help="FIRST archive (default: the bundled copy)")
    p.add_argument("--epochs", type=COUNT, default=200)
    p.add_argument("--batch-size", type=integer(2), default=128)
    p.add_argument("--lr", type=POSITIVE, default=1e-3, help="Adam learning rate")
    p.add_argument("--width", type=COUNT, default=64,
                   help="ResNet first-stage channels (64 = ResNet-18; the bundled classifier: 32)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentations")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train)


def _register_test(sub) -> None:
    p = sub.add_parser("test", help="accuracy and confusion matrix on a labelled set",
                       formatter_class=HelpFormatter)
    p.add_argument("--weights", help="classifier weights (.safetensors) or a bundled classifier's name "
                        "(first-morphology, the default, or first-morphology-2)")
    p.add_argument("--data", default="first:test",
                   help="labelled images: an HDF5 store, FITS folder or first:SPLIT")
    p.add_argument("--out", help="folder for result.json and confusion.png")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_test)


def _register_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="accuracy (and radio Fréchet distance) of samples against "
                                     "guidance strength (Table 7)",
                       formatter_class=HelpFormatter)
    p.add_argument("--weights", help="classifier weights (.safetensors) or a bundled classifier's name "
                        "(first-morphology, the default, or first-morphology-2)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="bundled model name")
    source.add_argument("--checkpoint", help="model file, checkpoint folder or run folder")
    p.add_argument("--guidance", "-w", type=number(0), nargs="+", default=[0.1, 0.2, 0.5, 0.75],
                   help="values of ω")
    p.add_argument("-n", "--num", type=COUNT, default=2000, help="images per class and ω")
    p.add_argument("--reference", default="first:test",
                   help="real images for the radio Fréchet distance of each ω's samples "
                        "(first:SPLIT, HDF5 store, FITS files or folder; 'none' to skip)")
    p.add_argument("--steps", type=COUNT, help="noise levels N (default: radiogen sample's)")
    p.add_argument("--sampler", help="ODE solver (default: radiogen sample's)")
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16", "fp16"],
                   help="network precision of the diffusion model")
    p.add_argument("--batch-size", type=COUNT, default=None,
                   help="images per network batch of the diffusion model (default: radiogen "
                        "sample's)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", help="JSON file for the table")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_sweep)


def _register_export(sub) -> None:
    p = sub.add_parser("export", help="copy classifier weights at lower precision, to ship them",
                       formatter_class=HelpFormatter)
    p.add_argument("weights", help="classifier weights (.safetensors)")
    p.add_argument("--out", required=True, help="weights file to write")
    p.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], default="fp16")
    p.set_defaults(func=run_export)


def _register_train_guide(sub) -> None:
    p = sub.add_parser("train-guide", help="train a noise-aware classifier for classifier guidance",
                       description="Train the noise-aware classifier p(c | x; σ) that `radiogen "
                                   "sample --guide-classifier` uses (Dhariwal & Nichol 2021): "
                                   "FIRST train split noised as in diffusion training, weighted "
                                   "cross-entropy, best EMA weights on the valid split. It is not "
                                   "the evaluation classifier, and must not be the one that judges "
                                   "images it guided.",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.add_argument("--steps", type=COUNT, default=2000, help="training steps (default %(default)s)")
    p.add_argument("--batch-size", type=integer(2), default=64,
                   help="images per step (default %(default)s)")
    p.add_argument("--lr", type=POSITIVE, default=1e-3,
                   help="Adam learning rate (default %(default)s)")
    p.add_argument("--width", type=COUNT, default=16,
                   help="first-stage channels of its ResNet-18 layout (16: 0.7 M parameters)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train_guide)


def run_train_guide(args) -> int:
    from radiogen.training.noise_classifier import guide_classifier_config, train_noise_classifier

    check_output_file(args.out)
    record = train_noise_classifier(args.out, guide_classifier_config(args.width), args.steps,
                                    args.batch_size, args.lr, seed=args.seed,
                                    progress=not args.no_progress)
    acc = ", ".join(f"σ={k}: {v:.2f}" for k, v in record["valid_accuracy_by_sigma"].items())
    print(f"best at step {record['step']}: valid accuracy {acc}; weights: {args.out}")
    return 0


def run_export(args) -> int:
    import torch

    from radiogen.evaluation.classifier import load_classifier, save_classifier

    check_output_file(args.out)
    model, record = load_classifier(args.weights)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[args.dtype]
    path = save_classifier(model, args.out, record, dtype)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {args.dtype})")
    return 0


def run_train(args) -> int:
    from radiogen.evaluation.classifier import ClassifierConfig
    from radiogen.evaluation.training import TrainSettings, train_first_classifier

    check_output_file(args.out)
    settings = TrainSettings(learning_rate=args.lr, batch_size=args.batch_size,
                             epochs=args.epochs, augment=not args.no_augment, seed=args.seed)
    result, tested = train_first_classifier(args.out, settings, ClassifierConfig(width=args.width),
                                            args.zip, args.device, not args.no_progress)
    print(f"best validation loss {result.best_valid_loss:.4f} at epoch {result.best_epoch} "
          f"(validation accuracy {result.best_valid_accuracy:.3f})")
    print(f"test accuracy {tested.accuracy:.3f} on {tested.n} images; weights: {args.out}")
    return 0


def _weights(args) -> str:
    from radiogen.evaluation.classifier import bundled_classifier, classifier_path
    if args.weights:
        return str(classifier_path(args.weights))
    try:
        return str(bundled_classifier())
    except FileNotFoundError as err:
        raise CommandError(f"{err}, or give --weights") from None


def _print_classification(result) -> None:
    from radiogen.data.first import CLASSES

    print(f"accuracy {result.accuracy:.3f} on {result.n} images")
    print("confusion (rows: true, columns: predicted)")
    print("         " + " ".join(f"{c:>8}" for c in CLASSES))
    for name, row in zip(CLASSES, result.confusion):
        print(f"{name:>8} " + " ".join(f"{v:>8d}" for v in row))


def run_test(args) -> int:
    from radiogen.evaluation.classifier import classify, load_classifier
    from radiogen.evaluation.inputs import load_image_set

    if args.out:
        check_output_folder(args.out)
    model, _ = load_classifier(_weights(args), args.device)
    data = load_image_set(args.data)
    result = classify(model, data.images, data.require_labels("classifier test"),
                      device=args.device)
    _print_classification(result)
    if args.out:
        from radiogen.evaluation.figures import confusion_figure
        from radiogen.evaluation.report import write_json

        out = Path(args.out)
        write_json({"data": data.source, "weights": _weights(args), **result.to_dict()},
                   out / "result.json")
        confusion_figure(result.confusion, f"{data.source}: accuracy {result.accuracy:.3f}",
                         out / "confusion.png")
    return 0


def run_sweep(args) -> int:
    from radiogen.evaluation.classifier import load_classifier
    from radiogen.evaluation.sweep import guidance_sweep

    if args.out:
        check_output_file(args.out)
    classifier, _ = load_classifier(_weights(args), args.device)
    reference = None
    if args.reference.lower() != "none":
        from radiogen.evaluation.inputs import load_image_set
        reference = load_image_set(args.reference).images
    rows = guidance_sweep(args.checkpoint or args.model, classifier, args.guidance, args.num,
                          args.steps, args.seed, args.batch_size, args.device,
                          not args.no_progress,
                          {"precision": args.precision, **({"sampler": args.sampler} if args.sampler else {})},
                          reference)
    classes = rows[0]["classes"] if rows else []
    print("   ω   accuracy  " + "".join(f"{c:>8}" for c in classes)
          + ("   Fréchet" if reference is not None else ""))
    for row in rows:
        print(f"{row['guidance']:5.2f}   {row['accuracy']:8.3f}  "
              + "".join(f"{r:8.2f}" for r in row["recall_per_class"])
              + (f"   {row['frechet']:7.1f}" if "frechet" in row else ""))
    if args.out:
        from radiogen.evaluation.report import write_json

        write_json({"reference": args.reference, "rows": rows}, args.out)
    return 0
