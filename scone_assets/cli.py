"""The `scone` command. Subcommands speak SCONE's config keys (`--config_path`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from scone_assets.config import (
    SURVEY_PREDICT_SETTINGS,
    SURVEY_TRAIN_SETTINGS,
    ConfigError,
    load_config,
)
from scone_assets.heatmaps import HeatmapError
from scone_assets.locking import FolderBusy
from scone_assets.model.prior import ClassPriorFileError
from scone_assets.outcome import Exit, Terminated
from scone_assets.simulate.classes import SimulationError
from scone_assets.snana.lightcurves import SnanaReadError

log = logging.getLogger("scone")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="more progress and detail")
    p.add_argument("--debug_flag", type=int, choices=[0, -901], default=None,
                   help="0 = current implementation, -901 = legacy loader")
    p.add_argument("--force_streaming", action="store_true", default=None,
                   help="always stream heatmaps from disk")


def cmd_inspect(args: argparse.Namespace) -> int:
    from scone_assets.snana.read import discover, discover_paths
    from scone_assets.snana.summary import exit_code, format_summary, summarize

    config = load_config(args.config_path) if args.config_path else None
    if args.paths:
        found = discover_paths(args.paths)
    elif config is not None:
        found = discover(config)
    else:
        raise ConfigError("give input paths or --config_path")
    summary = summarize(found, config)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    code = exit_code(summary)
    if code == Exit.USAGE:
        where = " ".join(args.paths) if args.paths else f"the inputs of {args.config_path}"
        print(f"error: no light curves could be read from {where}", file=sys.stderr)
    return code


def _keys(settings: dict) -> str:
    return ", ".join(f"`{k}: {str(v).lower() if isinstance(v, bool) else v}`" for k, v in settings.items())


def cmd_simulate(args: argparse.Namespace) -> int:
    from scone_assets.simulate.run import simulate

    like = None
    if args.ia_dust_tau is not None and not (args.like or args.like_config):
        raise SimulationError("--ia-dust-tau sets a --like simulation's SN Ia host dust; give --like DATA "
                              "or --like-config (the presets keep their own dust)")
    if args.like or args.like_config:
        from scone_assets.simulate.like import model_from_inputs

        like = model_from_inputs(args.like, load_config(args.like_config) if args.like_config else None)
        like = like.with_ia_dust(args.ia_dust_tau)
        print(f"survey model from {like.n_objects} real light curves ({like.survey}): bands "
              + " ".join(f"{b}={w:.0f}A" for b, w in zip(like.letters, like.waves, strict=True)))
    res = simulate(args.out, args.n, survey=args.survey, seed=args.seed, per_file=args.per_file,
                   mix=args.mix, gzip=args.gzip, jobs=args.jobs, force=args.force, like=like)
    kept = f" ({len(res.resumed_files)} file(s) already written, kept)" if res.resumed_files else ""
    print(f"wrote {res.n_written} light curves in {len(res.head_files)} file(s) to {res.folder}{kept}")
    for name, k in sorted(res.counts.items()):
        print(f"  {name}: {k}")
    if res.compared is not None:
        from scone_assets.simulate.like_report import shape_table

        print("compared with the data, per light curve, quantiles 10 / 25 / 50 / 75 / 90% (the simulation "
              "in its own class mix):")
        for what, data, sim in shape_table(res.compared):
            print(f"  {what}: data {data}; simulation {sim}")
    if like is not None:
        print(f"for the survey's data, train on {res.folder} with {_keys(SURVEY_TRAIN_SETTINGS)} and predict "
              f"with {_keys(SURVEY_PREDICT_SETTINGS)} (the settings measured on real survey data, BENCHMARKS.md)")
    return 0


def cmd_fit_dust(args: argparse.Namespace) -> int:
    from scone_assets.simulate import host_dust

    if args.class_prior is not None:
        from scone_assets.model.prior import read_ia_fraction

        fraction = read_ia_fraction(args.class_prior)
        print(f"SN Ia fraction {fraction:.3f}, estimated without labels in {args.class_prior}")
    else:
        fraction = args.ia_fraction
    config = load_config(args.data_config) if args.data_config else None
    warning = host_dust.made_like(args.sim, args.data, config)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    data = host_dust.survey_colours(args.data, config)
    sim = host_dust.simulated_colours(args.sim)
    fit = host_dust.fit_ia_dust(data, sim, fraction)
    for line in fit.describe():
        print(line)
    if args.plot:
        host_dust.plot_dust_fit(data, sim, fit, args.plot)
        print(f"plot: {args.plot}")
    return 0


def cmd_heatmaps(args: argparse.Namespace) -> int:
    from scone_assets.heatmaps.run import make_heatmaps

    config = load_config(args.config_path, **_overrides(args))
    run = make_heatmaps(config, backend=args.backend, jobs=args.jobs, force=args.force)
    return report_heatmaps(run, config)


def report_heatmaps(run, config) -> int:
    """One line per unit and set, then every problem by name; the exit code says if any."""
    from scone_assets.heatmaps.store import describe_duplicates

    for r in run.results:
        if r.status == "failed":
            print(f"FAILED       {r.unit} [{r.heatmap_set}]: {r.error}")
            continue
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.skipped.items())) or "none"
        line = f"{r.status:12s} {r.unit} [{r.heatmap_set}]: {r.written} heatmaps, skipped: {skipped}"
        if r.dropped_bands:
            line += ", observations dropped in unplaceable bands: " + ", ".join(
                f"{b} {n}" for b, n in sorted(r.dropped_bands.items()))
        if r.status in ("done", "remade"):
            line += f", {r.per_minute:.0f} heatmaps/min"
        if r.status == "remade":
            line += f" (remade: {'; '.join(r.reasons)})"
        print(line)
        for bad in r.bad_files:
            print(f"  BAD FILE   {bad}")
    problems = False
    for name, dups in run.duplicates.items():
        verb = "refused by train and predict unless duplicate_snids is set" \
            if config.duplicate_snids == "error" else f"resolved by duplicate_snids: {config.duplicate_snids}"
        print(f"DUPLICATES   [{name}] {len(dups)} SNID(s) in more than one file ({verb}): "
              f"{describe_duplicates(dups)}")
        problems |= config.duplicate_snids == "error"
    failed = [r for r in run.results if not r.ok]
    print(f"heatmaps in {config.heatmaps_path}: {len(run.results) - len(failed)} unit(s) complete"
          + (f", {len(failed)} with failures" if failed else ""))
    return Exit.PARTIAL if failed or problems else Exit.OK


def _overrides(args: argparse.Namespace) -> dict:
    out = {}
    if getattr(args, "debug_flag", None) is not None:
        out["debug_flag"] = args.debug_flag
    if getattr(args, "force_streaming", None):
        out["force_streaming"] = True
    if getattr(args, "verbose", False):
        out["verbose_data_loading"] = True
    return out


def heatmap_catalogs(config):
    from scone_assets.heatmaps.run import heatmap_sets
    from scone_assets.heatmaps.store import load_catalogs

    return load_catalogs(config.heatmaps_path, [name for name, _ in heatmap_sets(config)])


def merged_band_map(catalogs) -> dict:
    merged: dict = {}
    for cat in catalogs.values():
        merged.update(cat.band_to_wave)
    return merged


def cmd_train(args: argparse.Namespace) -> int:
    from scone_assets.model.train import default_model_dir, train

    config = load_config(args.config_path, **_overrides(args))
    catalogs = heatmap_catalogs(config)
    out = default_model_dir(config)
    metrics = train(config, catalogs, out, band_to_wave=merged_band_map(catalogs), force=args.force)
    t = metrics["test"]
    print(f"trained model: {out}")
    print(f"test set: {t['n']} light curves, accuracy {t['accuracy']:.3f}, AUC {t['auc']:.3f}, "
          f"SN Ia purity {t['purity']:.3f}, efficiency {t['efficiency']:.3f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from scone_assets.model.predict import predict

    config = load_config(args.config_path, **_overrides(args))
    if not config.trained_model:
        raise ConfigError("predict needs trained_model (a model folder from `scone train`)")
    catalogs = heatmap_catalogs(config)
    path = config.predictions_file()
    for name, catalog in catalogs.items():
        # one file per early truncation: each holds one row per object
        out = path if len(catalogs) == 1 else path.with_name(f"{path.stem}_{name}{path.suffix}")
        table = predict(config, catalog, config.trained_model, out)
        print(f"predictions for {len(table)} light curves: {out} ({len(catalog.skipped)} skipped, "
              "listed beside it)")
    return Exit.OK


def cmd_run(args: argparse.Namespace) -> int:
    """SCONE's two quickstart steps in one: heatmaps, then train or predict by `mode`."""
    rc = cmd_heatmaps(args)
    if rc not in (Exit.OK, Exit.PARTIAL):
        return rc
    # failed units were named above; the model step uses the rest, and the exit code keeps the failure
    step = cmd_train(args) if load_config(args.config_path).mode == "train" else cmd_predict(args)
    return max(rc, step)


def cmd_register(args: argparse.Namespace) -> int:
    """Register the input units of the configs as Dagster partitions (no sensor needed)."""
    from scone_assets.defs.demo import instance_for, register_partitions
    from scone_assets.defs.partitions import PARTITIONS
    from scone_assets.defs.resources import SconeResource

    scone = SconeResource(train_config_path=args.config_path, predict_config_path=args.predict_config_path,
                          output_root=os.environ.get("SCONE_OUTPUT_ROOT"))
    keys = scone.partition_keys()
    home = args.dagster_home or os.environ.get("DAGSTER_HOME")
    if not home:
        raise ConfigError("set DAGSTER_HOME (or --dagster_home) to the Dagster instance to register into")
    new = register_partitions(instance_for(home), keys)
    for role, unit_keys in keys.items():
        print(f"{PARTITIONS[role].name}: {len(unit_keys)} partitions ({len(new[role])} new) in {home}:")
        for k in unit_keys:
            print(f"  {k}{'  (new)' if k in new[role] else ''}")
    return 0


DEMO_TRAIN = """input_path: {sims}
num_epochs: 40
early_stopping_patience: 10
seed: 1
"""
DEMO_PREDICT = """input_path: {data}
mode: predict
# for `scone predict`; the platform's predictions use the promoted model version
trained_model: {model}
"""


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default, headless, through Dagster: simulate, register the
    partitions, materialize every asset, print the model's metrics and where predictions are."""
    from scone_assets.definitions import build_defs
    from scone_assets.defs.demo import instance_for, register_partitions, run_pipeline
    from scone_assets.simulate.run import simulate

    out = Path(args.out).resolve()
    sims = simulate(out / "sims" / "DEMO_DES", args.n, survey="des", seed=1, per_file=1000, jobs=args.jobs)
    data = simulate(out / "data" / "DEMO_SURVEY", max(100, args.n // 6), survey="des", seed=2, per_file=1000,
                    gzip=True, jobs=args.jobs)
    platform = out / "platform"
    configs = out / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    (configs / "train.yml").write_text(DEMO_TRAIN.format(sims=sims.folder))
    (configs / "predict.yml").write_text(DEMO_PREDICT.format(
        data=data.folder, model=platform / "models" / "versions" / "v0001"))
    # the survey_like flow at a demo's size; the UI gets the same sizes through ui.env
    like_n, like_epochs = max(300, args.n // 3), 20
    env = {"SCONE_TRAIN_CONFIG": str(configs / "train.yml"), "SCONE_PREDICT_CONFIG": str(configs / "predict.yml"),
           "SCONE_OUTPUT_ROOT": str(platform), "SCONE_LIKE_N": str(like_n), "SCONE_LIKE_EPOCHS": str(like_epochs)}
    os.environ.update(env)
    defs = build_defs(env["SCONE_TRAIN_CONFIG"], env["SCONE_PREDICT_CONFIG"], env["SCONE_OUTPUT_ROOT"], jobs=args.jobs,
                      like_n=like_n, like_num_epochs=like_epochs)
    instance = instance_for(out / "dagster_home")
    keys = defs.resources["scone"].partition_keys()
    register_partitions(instance, keys)
    result = run_pipeline(defs, instance, keys)
    (out / "ui.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()) + f"DAGSTER_HOME={out / 'dagster_home'}\n")
    m = result["metrics"]
    print(f"\nmodel: accuracy {m['accuracy']:.3f}, AUC {m['auc']:.3f}, SN Ia purity {m['purity']:.3f}, "
          f"efficiency {m['efficiency']:.3f} on {m['n_test']} test light curves; checks {result['checks']}")
    print(f"model version {result['version']} in {result['model_dir']} (metrics.json, roc.png, "
          f"confusion_matrix.png); promoted: {result['promoted'] or 'none'}")
    print(f"predictions: {platform / 'predict' / 'predictions.csv'}")
    print("see it all in the Dagster UI: make ui")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scone", description="SCONE supernova classification")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("inspect", help="count light curves, types, bands and skips in SNANA inputs")
    p.add_argument("paths", nargs="*", help="folders, HEAD/PHOT FITS files or TEXT files (any fsspec URL)")
    p.add_argument("--config_path", help="read inputs from a SCONE config instead")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("simulate", help="write a labelled SNANA FITS simulation folder")
    p.add_argument("--out", required=True, help="output folder (its name is the simulation VERSION)")
    p.add_argument("--n", type=int, default=5000, help="number of detected light curves")
    p.add_argument("--survey", default="des", help="des, lsst or lowz (ignored with --like)")
    p.add_argument("--like", nargs="+", default=None, metavar="DATA",
                   help="simulate the survey of these SNANA data (folders or files): its bands, observing "
                        "sequences, error-vs-flux relation, redshifts and MWEBV")
    p.add_argument("--like-config", dest="like_config", default=None,
                   help="as --like, with the inputs (and band_to_wave) of a SCONE config")
    p.add_argument("--ia-dust-tau", dest="ia_dust_tau", type=float, default=None, metavar="MAG",
                   help="with --like: SN Ia host dust A_V ~ Exponential(MAG) instead of BayeSN's 0.252 "
                        "(fit it to a survey's colours with `scone fit-dust`)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-file", dest="per_file", type=int, default=1000, help="light curves per HEAD/PHOT pair")
    p.add_argument("--mix", default=None, help="class fractions, e.g. SNIa=0.5,SNII=0.3,SNIbc=0.2")
    p.add_argument("--gzip", action="store_true", help="write .FITS.gz")
    p.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace a different simulation in --out")
    _common(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("fit-dust", help="fit a survey's SN Ia host-dust scale (--ia-dust-tau) to its colours")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", nargs="+", default=None, metavar="DATA", help="the survey's light curves, as --like")
    data.add_argument("--data-config", dest="data_config", default=None,
                      help="as --data, with the inputs (and band_to_wave) of a SCONE config, as --like-config")
    p.add_argument("--sim", required=True, help="a `scone simulate --like DATA` folder")
    share = p.add_mutually_exclusive_group(required=True)
    share.add_argument("--ia-fraction", dest="ia_fraction", type=float, default=None, metavar="F",
                       help="the survey's SN Ia fraction, estimated without labels")
    share.add_argument("--class-prior", dest="class_prior", default=None, metavar="JSON",
                       help="take it from a <predictions>.class_prior.json (a model trained on SIM, "
                            "run on DATA with class_prior: data)")
    p.add_argument("--plot", default=None, metavar="PNG", help="write the colour distributions and the fit")
    _common(p)
    p.set_defaults(func=cmd_fit_dust)

    p = sub.add_parser("heatmaps", help="make GP heatmaps (SCONE's create_heatmaps step)")
    p.add_argument("--config_path", required=True)
    p.add_argument("--backend", choices=["fast", "george"], default=None, help="GP back-end (default: fast)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="remake finished units")
    _common(p)
    p.set_defaults(func=cmd_heatmaps)

    for name, func, text in (("train", cmd_train, "train the classifier on heatmaps"),
                             ("predict", cmd_predict, "classify heatmaps with trained_model"),
                             ("run", cmd_run, "heatmaps, then train or predict by the config's mode")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config_path", required=True)
        if name == "run":
            p.add_argument("--backend", choices=["fast", "george"], default=None)
            p.add_argument("--jobs", type=int, default=None)
        if name in ("train", "run"):
            p.add_argument("--force", action="store_true",
                           help="remake finished heatmap units and replace an existing model folder"
                           if name == "run" else "replace an existing model folder")
        _common(p)
        p.set_defaults(func=func)

    p = sub.add_parser("register", help="register input units as Dagster partitions (for CLI backfills)")
    p.add_argument("--config_path", required=True, help="the train config")
    p.add_argument("--predict_config_path", default=None, help="the predict config")
    p.add_argument("--dagster_home", default=None, help="the Dagster instance (default: $DAGSTER_HOME)")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("demo", help="run the main job on the embedded default data")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--n", type=int, default=3000, help="light curves in the embedded default")
    p.add_argument("--jobs", type=int, default=None)
    _common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def _on_sigterm(signum, frame):
    raise Terminated()


USER_ERRORS = (ConfigError, SnanaReadError, SimulationError, HeatmapError, FolderBusy, ClassPriorFileError)


def main(argv: list[str] | None = None) -> int:
    """Run one command; see `scone_assets.outcome` for what the exit code means."""
    import signal

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("scone_assets").setLevel(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    warnings.simplefilter("default")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(dagster|keras|tensorflow).*")
    signal.signal(signal.SIGTERM, _on_sigterm)
    verbose = getattr(args, "verbose", False)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as exc:
        _fail(exc, verbose)
        return Exit.USAGE
    except BrokenPipeError:  # `scone ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.PARTIAL
    except OSError as exc:  # a full disk, a permission: the file and the reason, not a traceback
        _fail(exc, verbose, prefix=os_error_text(exc))
        return Exit.PARTIAL
    except KeyboardInterrupt:
        print(f"scone {args.command}: interrupted; finished work is kept, temporary files removed",
              file=sys.stderr)
        return Exit.INTERRUPTED
    except Terminated:
        print(f"scone {args.command}: terminated; finished work is kept, temporary files removed",
              file=sys.stderr)
        return Exit.TERMINATED


def os_error_text(exc: OSError) -> str:
    import errno

    where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
    if exc.errno == errno.ENOSPC:
        return f"error: disk full{where}; nothing incomplete was left under a final name"
    return f"error: {exc.strerror or exc}{where}"


def _fail(exc: BaseException, verbose: bool, prefix: str | None = None) -> None:
    """One message format for every command: `error: <what>`, a traceback only with -v."""
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(prefix or f"error: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
