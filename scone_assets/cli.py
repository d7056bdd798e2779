"""The `scone` command. Subcommands speak SCONE's config keys (`--config_path`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

from scone_assets.config import ConfigError, load_config
from scone_assets.snana.model import SnanaReadError

log = logging.getLogger("scone")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="more progress and detail")
    p.add_argument("--debug_flag", type=int, choices=[0, -901], default=None,
                   help="0 = current implementation, -901 = legacy loader")
    p.add_argument("--force_streaming", action="store_true", default=None,
                   help="always stream heatmaps from disk")


def cmd_inspect(args: argparse.Namespace) -> int:
    from scone_assets.inspect import format_summary, summarize
    from scone_assets.snana.read import discover, discover_paths

    config = load_config(args.config_path) if args.config_path else None
    if args.paths:
        found = discover_paths(args.paths)
    elif config is not None:
        found = discover(config)
    else:
        raise ConfigError("give input paths or --config_path")
    summary = summarize(found, config)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    if not summary["files"]:
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default. Until the simulator lands, the shared SNANA data."""
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not shared.is_dir():
        print("The demo needs SNANA data: the built-in simulator is not available yet and "
              f"{shared} does not exist. Run `scone inspect PATH` on your own SNANA files.")
        return 1
    from scone_assets.inspect import format_summary, summarize
    from scone_assets.snana.read import discover_paths

    paths = [str(p) for p in sorted((shared / "snana_fits").iterdir()) if p.is_dir()]
    paths.append(str(shared / "snpcc_dev"))
    summary = summarize(discover_paths(paths))
    print(format_summary(summary))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inspect.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nsummary written to {out / 'inspect.json'}")
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

    p = sub.add_parser("demo", help="run the main job on the embedded default data")
    p.add_argument("--out", default="demo_output")
    _common(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("default")
    try:
        return int(args.func(args) or 0)
    except (ConfigError, SnanaReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
