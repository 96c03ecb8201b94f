"""CLI: `spinescope convert-tf CHECKPOINT --spec NAME_OR_FILE --out FILE`: a Model Garden SpineNet / Mobile SpineNet
checkpoint (backbone, and its RetinaNet head where there is one) as our state dict (`--backbone-only`: everything
but the backbone left out), in safetensors (`.safetensors`, needs the safetensors package) or torch format (any other suffix)."""
from __future__ import annotations

from pathlib import Path

from spinescope.analysis.cli import CliError, load_spec_argument
from spinescope.spinenet.validate import printable


def register(subparsers) -> None:
    sub = subparsers.add_parser("convert-tf", help="a Model Garden (TF2) SpineNet checkpoint (backbone, RetinaNet "
                                                   "head) as our state dict")
    sub.add_argument("checkpoint", help="TF checkpoint prefix (e.g. ckpt-1) or a directory holding one")
    sub.add_argument("--spec", required=True, help="built-in name or spec file of the checkpoint's architecture "
                                                   "(taken with semantics: model_garden)")
    sub.add_argument("--out", required=True, help="output file: .safetensors, or torch's format otherwise")
    sub.add_argument("--backbone-only", action="store_true",
                     help="convert the backbone alone, leaving out every other variable (head, decoder) instead of "
                          "refusing those it cannot place")
    sub.set_defaults(handler=_cmd_convert)


def _cmd_convert(args) -> int:
    from spinescope.analysis.convert.model_garden import ConversionError, convert
    from spinescope.analysis.convert.reader import CheckpointError, read_checkpoint

    spec, _ = load_spec_argument(args.spec)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise CliError(f"--out {printable(args.out)}: no such directory {printable(out.parent)}")
    try:
        conversion = convert(read_checkpoint(args.checkpoint), spec, args.backbone_only)
    except (ConversionError, CheckpointError) as error:
        raise CliError(printable(str(error))) from None
    state = conversion.state_dict
    if conversion.with_head:  # keyed as a whole model's modules: create_model(spec, "retinanet")
        target = 'spinescope.create_model(spec, "retinanet")'
    else:  # keyed as the backbone's own modules (a whole model's `backbone` the same)
        state = {name.removeprefix("backbone."): array for name, array in state.items()}
        target = "spinescope.create_backbone(spec)"
    write_state_dict(state, out)
    for note in conversion.notes:
        print(f"note: {note}")
    print(f"{conversion.placed} variables of {printable(args.checkpoint)} -> {len(state)} tensors for "
          f"{printable(conversion.spec.name)} (semantics: model_garden"
          + (", with its RetinaNet head" if conversion.with_head else "") + f") in {printable(out)}; load it into "
          f"{target} of that spec with semantics: model_garden")
    return 0


def write_state_dict(state: dict, out: Path) -> None:
    """Writes {name: numpy array} as safetensors (suffix .safetensors) or with torch.save (anything else)."""
    import torch

    tensors = {name: torch.from_numpy(array) for name, array in state.items()}
    if out.suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError:
            raise CliError("safetensors is not installed: pip install safetensors, or write a .pt file") from None
        save_file(tensors, str(out))
        return
    try:
        torch.save(tensors, out)
    except OSError as error:
        raise CliError(f"--out {printable(out)}: {printable(error.strerror or error)}") from None
