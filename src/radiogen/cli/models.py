"""``radiogen models``: list the bundled models and presets."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="list bundled models and training presets",
                              description="List the trained models shipped with radiogen and the "
                                          "training presets.")
    p.set_defaults(func=run)


def run(args) -> int:
    from radiogen.api import bundled_models
    from radiogen.config import list_presets, load_preset
    models = bundled_models()
    print("bundled models:" if models else "bundled models: none installed yet "
          "(train one with `radiogen train`, then sample with --checkpoint)")
    for name, path in sorted(models.items()):
        print(f"  {name:16s} {path}")
    print("training presets:")
    for name in list_presets():
        print(f"  {name:16s} {load_preset(name).description[:100]}")
    return 0
