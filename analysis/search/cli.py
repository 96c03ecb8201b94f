"""CLI: `spinescope space` (describe the space, sample it, the population's distributions, `--out DIR` writes the
samples as spec files) and `spinescope search` (start or resume a run, `--list`, `--show ID`, `--cancel ID`).

Every bad argument is one line (exit 2). A search prints one line per candidate as its result arrives; Ctrl-C
stops it (exit 130) and `--run ID` resumes it where it stopped.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from spinescope.analysis.cli import CliError, int_in_range, load_spec_argument
from spinescope.spinenet.validate import LIMITS, printable

RANGE = re.compile(r"\A\s*([0-9.eE+-]*)\s*:\s*([0-9.eE+-]*)\s*\Z")


def _range(what: str, scale: float):
    """argparse type for 'LOW:HIGH' (either side may be empty) in units of `scale`; returns (low, high) or None
    sides, in base units."""
    def parse(text: str):
        match = RANGE.match(text)
        if not match or not (match.group(1) or match.group(2)):
            raise argparse.ArgumentTypeError(f"{what} {ascii(text[:40])} must be LOW:HIGH, LOW: or :HIGH (e.g. 80:100)")
        values = []
        for part in match.groups():
            try:
                value = float(part) * scale if part else None
            except ValueError:
                raise argparse.ArgumentTypeError(f"{what} {ascii(part[:40])} is not a number") from None
            if value is not None and not (0 <= value < float("inf")):
                raise argparse.ArgumentTypeError(f"{what} {ascii(part[:40])} must be a finite number >= 0")
            values.append(value)
        if None not in values and values[0] > values[1]:
            raise argparse.ArgumentTypeError(f"{what} {ascii(text[:40])}: LOW is above HIGH")
        return tuple(values)
    return parse


def _positive_float(what: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} {ascii(text[:40])} is not a number") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{what} {ascii(text[:40])} must be a finite number > 0")
        return value
    return parse


def _moves(text: str) -> tuple[str, ...]:
    from spinescope.analysis.search.space import MOVES

    items = [item.strip() for item in text.split(",") if item.strip()] if text.strip() not in ("", "none") else []
    for item in items:
        if item not in MOVES:
            raise argparse.ArgumentTypeError(f"unknown move {ascii(item[:40])}; use a comma list of "
                                             f"{', '.join(MOVES)} (or none)")
    return tuple(dict.fromkeys(items))


def _add_space_options(sub) -> None:
    from spinescope.spinenet.registry import head_names

    group = sub.add_argument_group("space")
    group.add_argument("--seed-spec", default=None, metavar="SPEC",
                       help="the space's seed: 'resnet50' (ResNet-50's blocks, default) or a SpineNet built-in name or "
                            "spec file (e.g. spinenet-49)")
    group.add_argument("--moves", type=_moves, default=None, metavar="LIST",
                       help="comma list of permute, parents, levels, types (default: all four)")
    group.add_argument("--input-size", type=int_in_range(LIMITS["min_input_size"], LIMITS["max_input_size"],
                                                        "input size"), metavar="N",
                       help="square input (pixels) the candidates are counted at (default: the seed's, 640)")
    group.add_argument("--head", choices=head_names(), default=None, help="head counted with (default retinanet)")
    group.add_argument("--gmacs", type=_range("--gmacs", 1e9), metavar="LOW:HIGH",
                       help="MACs range in billions of multiply-adds (backbone + head, batch 1), e.g. 85:100")
    group.add_argument("--mparams", type=_range("--mparams", 1e6), metavar="LOW:HIGH",
                       help="params range in millions, e.g. :30")
    group.add_argument("--memory-gib", type=_positive_float("--memory-gib"), metavar="GIB",
                       help="largest estimated training-step memory (GiB, fp32, SGD) at --memory-batch")
    group.add_argument("--memory-batch", type=int_in_range(1, 4096, "memory batch"), default=None, metavar="N",
                       help="batch of the memory constraint and column (default 8)")
    group.add_argument("--allow-dead", action="store_true", default=None,
                       help="accept candidates with blocks that reach no output (default: refused)")


def _space_from_args(args, stored: dict | None = None):
    from spinescope.analysis.search.seed import SEED_RESNET50
    from spinescope.analysis.search.space import MOVES, Constraints, SpaceError, make_space

    seed = args.seed_spec or SEED_RESNET50
    seed_spec = None
    if seed.lower() != SEED_RESNET50:
        seed_spec, _ = load_spec_argument(seed)
    macs, params = args.gmacs or (None, None), args.mparams or (None, None)
    constraints = Constraints(macs[0], macs[1], params[0], params[1],
                              args.memory_gib * 2 ** 30 if args.memory_gib else None, args.memory_batch or 8,
                              bool(args.allow_dead))
    try:
        return make_space(seed.lower() if seed_spec is None else seed, MOVES if args.moves is None else args.moves,
                          args.input_size, args.head or "retinanet", constraints, seed_spec)
    except SpaceError as error:
        raise CliError(str(error)) from None


def register(subparsers) -> None:
    sub = subparsers.add_parser("space", help="describe the architecture search space, sample it and show the "
                                              "population's distributions")
    _add_space_options(sub)
    sub.add_argument("--samples", type=int_in_range(1, 100_000, "samples"), default=1000, metavar="N",
                     help="valid candidates to sample (default 1000)")
    sub.add_argument("--seed", type=int_in_range(0, 2 ** 31 - 1, "seed"), default=0, help="random seed (default 0)")
    sub.add_argument("--out", metavar="DIR", help="write every sample as a JSON spec file into DIR")
    sub.add_argument("--counts-only", action="store_true",
                     help="MACs and params only (thousands per second); without it each sample is also described for "
                          "its receptive fields and training memory (tens of milliseconds each)")
    sub.add_argument("--json", action="store_true", help="print one JSON object (space, summary)")
    sub.set_defaults(handler=_cmd_space)

    from spinescope.analysis.search.engine import ALGORITHMS, MAX_BUDGET, OBJECTIVES

    sub = subparsers.add_parser("search", help="random search or regularized evolution over the space (stored in "
                                               "SQLite, resumable; local pool or Ray)")
    _add_space_options(sub)
    action = sub.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the stored runs")
    action.add_argument("--show", metavar="ID", help="show a run's best candidates and write the best one's spec file")
    action.add_argument("--cancel", metavar="ID", help="ask a running run to stop")
    sub.add_argument("--run", metavar="ID", help="run id: a new run with this id, or the stored run to resume")
    sub.add_argument("--db", metavar="PATH", help="search file (default: search.sqlite in the data directory)")
    sub.add_argument("--algorithm", choices=ALGORITHMS, default=None, help="default evolution")
    sub.add_argument("--objective", choices=OBJECTIVES, default=None,
                     help="cost: maximise P3's receptive field within the constraints (default); proxy-ap: short "
                          "training on --dataset")
    sub.add_argument("--budget", type=int_in_range(1, MAX_BUDGET, "budget"), default=None, metavar="N",
                     help="candidates to evaluate (default 32; on resume, raises the stored budget)")
    sub.add_argument("--population", type=int_in_range(2, MAX_BUDGET, "population"), default=None, metavar="P",
                     help="evolution's population (default 8)")
    sub.add_argument("--tournament", type=int_in_range(1, MAX_BUDGET, "tournament"), default=None, metavar="S",
                     help="evolution's tournament size (default 3)")
    sub.add_argument("--round", type=int_in_range(1, 1024, "round size"), default=None, metavar="R",
                     help="candidates proposed per round from the same results (default 4)")
    sub.add_argument("--seed", type=int_in_range(0, 2 ** 31 - 1, "seed"), default=None, help="random seed (default 0)")
    sub.add_argument("--dataset", metavar="DIR", help="proxy-ap: COCO-format directory (spinescope make-dataset)")
    sub.add_argument("--steps", type=int_in_range(1, 1_000_000, "steps"), default=None, help="proxy-ap: training "
                                                                                              "steps (default 30)")
    sub.add_argument("--batch-size", type=int_in_range(1, 1024, "batch size"), default=None,
                     help="proxy-ap: images per step (default 2)")
    sub.add_argument("--train-size", type=int_in_range(32, 2048, "train size"), default=None, metavar="N",
                     help="proxy-ap: square training image size (default 128)")
    sub.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="proxy-ap: default auto")
    sub.add_argument("--workers", type=int_in_range(0, 256, "workers"), default=None, metavar="N",
                     help="local worker processes (0: in this process; default 0 for cost, 2 for proxy-ap)")
    sub.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("SPINESCOPE_RAY") or None,
                     help="evaluate on a Ray cluster ('local', 'auto', HOST:PORT, ray://HOST:PORT); default "
                          "SPINESCOPE_RAY, else the local pool")
    sub.add_argument("--top", type=int_in_range(1, 10_000, "top"), default=10, help="--show: rows (default 10)")
    sub.add_argument("--export-best", metavar="FILE", help="write the best candidate's spec (JSON) to FILE")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.set_defaults(handler=_cmd_search)


def _cmd_space(args) -> int:
    from spinescope.analysis.search.population import format_summary, reference_metrics, summarize
    from spinescope.analysis.search.space import SpaceError, candidate_metrics, sample_many

    space = _space_from_args(args)
    out = _out_dir(args.out) if args.out else None
    try:
        samples, draws = sample_many(space, args.samples, args.seed, receptive=not args.counts_only,
                                     progress=_progress_line())
    except SpaceError as error:
        raise CliError(str(error)) from None
    finally:
        if sys.stderr.isatty():
            print(" " * 40, end="\r", file=sys.stderr)
    metrics = []
    for spec, cheap in samples:
        row = dict(cheap)
        if not args.counts_only:
            row["memory_bytes"] = candidate_metrics(spec, space, memory=True, receptive=False)["memory_bytes"]
        metrics.append(row)
    references = reference_metrics(space)
    if args.counts_only:
        references = {name: {k: v for k, v in values.items() if k in ("macs", "params")}
                      for name, values in references.items()}
    summary = summarize(metrics, references)
    written = _write_samples(out, samples) if out else []
    if args.json:
        print(json.dumps({"space": space.to_dict(), "samples": len(samples), "draws": draws, "summary": summary,
                          "files": [str(p) for p in written]}, indent=2, default=str))
        return 0
    print("\n".join(space.describe()))
    memory = "" if args.counts_only else (f"; memory: estimated training step at batch "
                                          f"{space.constraints.memory_batch} (fp32, SGD)")
    print(f"{len(samples)} valid sample(s) from {draws} draw(s) (seed {args.seed}); counted at "
          f"{space.input_size} x {space.input_size} with head '{space.head}', batch 1{memory}; MACs = multiply-adds "
          "(FLOPs = 2 x MACs)")
    print(format_summary(summary, len(samples)))
    if out:
        print(f"wrote {len(written)} spec file(s) to {printable(out)}")
    return 0


def _progress_line():
    """Returns a progress callback that rewrites one line on a terminal's stderr every 50 samples (None elsewhere)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, count: int) -> None:
        if done % 50 == 0 or done == count:
            print(f"sampled {done:,} of {count:,}", end="\r", file=sys.stderr, flush=True)
    return show


def _out_dir(text: str) -> Path:
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CliError(f"--out {ascii(text[:80])}: cannot create it ({error.strerror or type(error).__name__})") from None
    return path


def _write_samples(out: Path, samples) -> list[Path]:
    from spinescope.spinenet.formats import dumps_json

    paths = []
    for index, (spec, _) in enumerate(samples):
        path = out / f"sample-{index:05d}-{spec.name}.json"
        try:
            path.write_text(dumps_json(spec))
        except OSError as error:
            raise CliError(f"cannot write {ascii(str(path))} ({error.strerror or type(error).__name__})") from None
        paths.append(path)
    return paths


def _store(args):
    from spinescope.analysis.search.store import Store, StoreError

    try:
        return Store(args.db)
    except StoreError as error:
        raise CliError(str(error)) from None


def _cmd_search(args) -> int:
    from spinescope.analysis.search.engine import SearchError
    from spinescope.analysis.search.space import SpaceError
    from spinescope.analysis.search.store import StoreError

    try:
        if args.list:
            return _list(_store(args), args)
        if args.show:
            return _show(_store(args), args.show, args)
        if args.cancel:
            from spinescope.analysis.search.engine import request_cancel

            request_cancel(_store(args), args.cancel)
            print(f"asked run {printable(args.cancel)} to stop; it is marked 'cancelled' within a second if it "
                  "is running (resume it with --run)")
            return 0
        return _run(args)
    except (SearchError, SpaceError, StoreError) as error:
        raise CliError(str(error)) from None


CONFIG_OPTIONS = ("seed_spec", "moves", "input_size", "head", "gmacs", "mparams", "memory_gib", "memory_batch",
                  "allow_dead", "algorithm", "objective", "population", "tournament", "round", "seed", "dataset",
                  "steps", "batch_size", "train_size", "device")


def _run(args) -> int:
    from spinescope.analysis.search.engine import (SearchConfig, TrainSettings, check_config, create_run,
                                                   run_search)
    from spinescope.analysis.search.store import check_run_id

    if args.ray:
        from spinescope.analysis.sweep.ray_runner import RayAddressError, check_address

        try:
            check_address(args.ray)
        except RayAddressError as error:
            raise CliError(f"--ray (or SPINESCOPE_RAY): {error}") from None
    store = _store(args)
    if args.run:
        check_run_id(args.run)
    if args.run and store.has_run(args.run):
        given = [f"--{name.replace('_', '-')}" for name in CONFIG_OPTIONS if getattr(args, name) is not None]
        if given:
            raise CliError(f"run {printable(args.run)} exists: it resumes with its stored settings; drop "
                           f"{', '.join(given)} (only --budget, --workers, --ray and --db apply to a resumed run)")
        run_id = args.run
        config = SearchConfig.from_dict(store.run(run_id)["config"])
        if args.budget and args.budget != config.budget:
            if args.budget < config.budget:
                raise CliError(f"--budget {args.budget} is below the run's {config.budget}; a budget can only grow")
            config = SearchConfig.from_dict({**config.to_dict(), "budget": args.budget})
            store.set_config(run_id, config.to_dict())
        done = len(store.candidates(run_id))
        print(f"resuming run {printable(run_id)}: {done} of {config.budget} candidates already stored")
    else:
        space = _space_from_args(args)
        train = TrainSettings(dataset=args.dataset, steps=args.steps or 30, batch_size=args.batch_size or 2,
                              image_size=args.train_size or 128, device=args.device or "auto")
        config = SearchConfig(space, args.algorithm or "evolution", args.objective or "cost", args.budget or 32,
                              args.seed or 0, args.population or 8, args.tournament or 3, args.round or 4, train)
        if config.tournament > config.population:
            raise CliError(f"--tournament {config.tournament} is larger than the population {config.population}")
        check_config(config)
        run_id = create_run(store, config, args.run)
        print(f"run {printable(run_id)} ({config.algorithm}, objective {config.objective}, budget {config.budget}, "
              f"seed {config.seed}) in {printable(store.path)}")
        print("\n".join(f"  {line}" for line in space.describe()))
    print(_HEADER)
    result = run_search(store, run_id, workers=args.workers, ray=args.ray,
                        on_candidate=lambda row: print(_line(row, config.objective), flush=True))
    print(f"run {printable(run_id)}: {result['status']} ({printable(result['message'])})")
    _print_best(store, run_id, args.export_best, config.objective)
    if result["status"] == "cancelled":
        print(f"resume it with: spinescope search --run {run_id}" + (f" --db {args.db}" if args.db else ""))
    return 0 if result["status"] in ("done", "cancelled") else 1


_HEADER = f"{'idx':>5s} {'origin':9s} {'GMACs':>7s} {'Mparams':>7s} {'P3 RF px':>8s} {'objective':>10s}  move / error"


def _line(row: dict, objective: str) -> str:
    value = "failed" if row["objective"] is None else (f"{row['objective']:.4f}" if objective == "proxy-ap"
                                                       else f"{row['objective']:.0f}")
    detail = row["error"] if row["status"] == "failed" else (row["move"] or "")
    if row["parent_idx"] is not None:
        detail = f"from {row['parent_idx']}: {detail}"
    return (f"{row['idx']:5d} {row['origin']:9s} {row['macs'] / 1e9:7.2f} {row['params'] / 1e6:7.2f} "
            f"{row['metrics'].get('rf_P3', 0):8d} {value:>10s}  {printable(detail)}")


def _objective_label(objective: str) -> str:
    return ("proxy AP@[.5:.95] of a short training on the synthetic set (a proxy, not COCO AP)"
            if objective == "proxy-ap" else "cost: P3 receptive field, pixels (higher is better)")


def _best_path(store, run_id: str) -> Path:
    return store.path.parent / "search-specs" / f"{run_id}-best.json"


def _print_best(store, run_id: str, export: str | None, objective: str) -> dict | None:
    from spinescope.analysis.search.engine import best_candidate
    from spinescope.spinenet.formats import dumps_json
    from spinescope.spinenet.spec import spec_from_dict

    best = best_candidate(store.candidates(run_id))
    if best is None:
        print("no finished candidate yet")
        return None
    path = Path(export) if export else _best_path(store, run_id)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps_json(spec_from_dict(best["spec"])))
    except OSError as error:
        raise CliError(f"cannot write {ascii(str(path))} ({error.strerror or type(error).__name__})") from None
    print(f"best: candidate {best['idx']} {best['name']}: {_objective_label(objective)} {best['objective']:.4g}, "
          f"{best['macs'] / 1e9:.2f} GMACs, {best['params'] / 1e6:.2f} M params")
    print(f"best spec file: {printable(path)}  (open it: spinescope analyze {printable(path)}, or the app's spec "
          "loader)")
    return {"candidate": best, "path": str(path)}


def _list(store, args) -> int:
    runs = store.runs()
    if args.json:
        print(json.dumps([{k: v for k, v in run.items() if k != "config"} | {
            "algorithm": run["config"]["algorithm"], "objective": run["config"]["objective"],
            "budget": run["config"]["budget"]} for run in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {printable(store.path)}")
        return 0
    print(f"{'run':32s} {'status':10s} {'algorithm':10s} {'objective':9s} {'done':>11s} {'best':>10s}")
    for run in runs:
        config = run["config"]
        best = "-" if run["best"] is None else f"{run['best']:.4g}"
        print(f"{printable(run['id'])[:32]:32s} {run['status']:10s} {config['algorithm']:10s} {config['objective']:9s} "
              f"{run['done']:>5d}/{config['budget']:<5d} {best:>10s}")
    return 0


def _show(store, run_id: str, args) -> int:
    run = store.run(run_id)
    rows = store.candidates(run_id)
    objective = run["config"]["objective"]
    done = [row for row in rows if row["status"] == "done"]
    top = sorted(done, key=lambda row: (-row["objective"], row["idx"]))[:args.top]
    if args.json:
        best = _print_best(store, run_id, args.export_best, objective) if done else None
        print(json.dumps({"run": run, "candidates": len(rows), "failed": len(rows) - len(done),
                          "top": [{k: v for k, v in row.items() if k != "spec"} for row in top],
                          "best_spec_file": best and best["path"]}, indent=2))
        return 0
    print(f"run {printable(run_id)}: {run['status']} {printable(run['message'])}; {len(rows)} of "
          f"{run['config']['budget']} candidates ({len(rows) - len(done)} failed); {_objective_label(objective)}")
    print(_HEADER)
    for row in top:
        print(_line(row, objective))
    _print_best(store, run_id, args.export_best, objective)
    return 0
