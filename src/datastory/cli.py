"""`datastory`: the command line the DVC stages and the analyst call.

Errors the user can fix print as one clear message with exit status 2; `--debug` shows tracebacks.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from . import __version__
from .errors import DatastoryError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="datastory", description=__doc__.splitlines()[0])
    ap.add_argument("--version", action="version", version=f"datastory {__version__}")
    ap.add_argument("--debug", action="store_true", help="show full tracebacks and library logs")
    ap.add_argument("--root", default=None, help="project folder (default: found from the current folder)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    smp = sub.add_parser("sample", help="write the seeded sample company to data/raw/ (with another source in "
                         "params/data.yaml: an empty placeholder)")
    smp.add_argument("--invoice-log", metavar="CSV", default=None,
                     help="also write it as a retail invoice-line log (InvoiceNo, StockCode, ..., Country) here")
    for stage in ("ingest", "kpis", "forecast", "churn"):
        sub.add_parser(stage, help=f"run notebooks' {stage} stage (papermill, params/*.yaml)")
    rep = sub.add_parser("report", help="build one audience's workbook, HTML and PDF")
    rep.add_argument("--audience", required=True)
    dl = sub.add_parser("deliver", help="compose one audience's email; send it when params/deliver.yaml says so "
                        "(exit 2: this run left a recipient without it; 3: held by the quality gate, or still open "
                        "from an earlier run)")
    dl.add_argument("--audience", required=True)
    again = dl.add_mutually_exclusive_group()
    again.add_argument("--resend", action="store_true",
                       help="also send to recipients whose delivery is in doubt (the connection dropped after the "
                       "message was sent) or who refused it before; never to those who surely have it")
    again.add_argument("--mark-sent", action="store_true",
                       help="record the recipients in doubt as delivered (after checking that it arrived); "
                       "sends nothing")
    again.add_argument("--force", action="store_true",
                       help="send to every recipient again, even those who surely have this exact pack")
    sub.add_parser("check-params", help="validate every params/*.yaml, params/paths.yaml and the rules across "
                   "them (a file source of the declared kind; audiences' regions the data can have), then print the "
                   "effective settings, defaults included; writes nothing")
    sub.add_parser("check-data", help="read and validate the configured source (params/data.yaml), print a "
                   "data-quality summary and what the data supports (forecast, churn); writes nothing; exit 2 "
                   "when the data cannot run the pipeline")
    sub.add_parser("plots-page", help="write the page template `dvc plots show` uses, with Vega inlined so the "
                   "plots draw offline (.datastory/plots.html), and make the dashboards' Vega bundle once "
                   "(.datastory/vega/); `make setup` runs it")
    sd = sub.add_parser("stage-deps", help="compare each dvc.yaml stage's src/ deps with the code its command "
                        "imports (its import closure); print the lines to add or remove, exit 1 when they differ")
    sd.add_argument("--write", action="store_true", help="rewrite dvc.yaml's src/ deps to match instead")
    sv = sub.add_parser("serve", help="serve the reports folder over HTTP, read-only, on localhost by default; an "
                        "open dashboard reloads itself when a newer build lands")
    sv.add_argument("--port", type=int, default=8000, help="default 8000 (0: any free port)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine "
                    "only; another address lets the network read the reports)")
    sv.add_argument("--interval", type=float, default=None, metavar="S", help="seconds between an open "
                    "dashboard's checks for a newer build (default 10; added to the printed URLs as ?poll=S)")
    wa = sub.add_parser("watch", help="re-run `dvc repro` when a file in data/raw/ changes (SQL source: on an "
                        "interval), one log line per run")
    wa.add_argument("--interval", type=float, default=None, metavar="S",
                    help="seconds between checks (default 10; with a SQL source, between runs: default 3600)")
    wa.add_argument("--once", action="store_true", help="check once, run if needed, exit with the run's status "
                    "(for cron)")
    ff = sub.add_parser("forecast-file", help="backtest, select and forecast every series of a long CSV "
                        "(unique_id, ds, y)")
    ff.add_argument("input", help="CSV with columns unique_id, ds (YYYY-MM-DD), y")
    ff.add_argument("--freq", required=True, help="D, W (or W-MON..W-SUN), MS/M/ME, QS/Q/QE")
    ff.add_argument("--horizon", type=int, required=True, help="periods ahead")
    ff.add_argument("--out", required=True, help="output CSV: unique_id, ds, yhat, yhat_lower, yhat_upper, model")
    ff.add_argument("--folds", type=int, default=None, help="rolling-origin backtest folds (default 3)")
    ff.add_argument("--models", default=None, help="comma-separated from seasonal_naive, theta, ets, ces, prophet "
                    "and combination (default: the pipeline's, all of them)")
    ff.add_argument("--fill", choices=["interpolate", "zero", "none"], default=None,
                    help="a period missing from a series: interpolate (default; never scored), zero (a missing "
                         "row means nothing happened) or none (Prophet fits around it)")
    ff.add_argument("--holidays", default=None, metavar="CC",
                    help="country code (e.g. US, DE, GB) whose public holidays Prophet learns; default none")
    ff.add_argument("--summary", default=None, help="per-series summary CSV: what was done with each series and "
                    "why (default: beside --out, NAME.series.csv)")
    ff.add_argument("--engine", choices=["local", "dask"], default=None, help="default dask (LocalCluster)")
    ff.add_argument("--seed", type=int, default=None, help="Prophet optimizer seed (default 0)")
    return ap


# The pipeline's commands (the stages of dvc.yaml): each one checks every params file and the rules across them
# before it writes anything, so `dvc repro` stops at its first stage on a bad value. True: also check the
# audiences' regions against the ingested data (the stages after ingest).
PIPELINE = {"sample": False, "ingest": False, "kpis": True, "forecast": True, "churn": True, "report": True,
            "deliver": True}


def _forecast_file(args: argparse.Namespace) -> int:
    """`datastory forecast-file`: standalone, works on any file, inside a project or not."""
    from .forecast import file as ffile

    models = [x.strip() for x in args.models.split(",") if x.strip()] if args.models is not None else None
    cfg = ffile.file_params(args.freq, args.horizon, args.folds, models, args.engine, args.seed, args.fill,
                            args.holidays)
    run = ffile.forecast_file(args.input, args.out, cfg, args.freq, progress=True, summary_to=args.summary)
    for line in ffile.summary_lines(run.summary):
        print(line, file=sys.stderr)
    print(f"wrote {run.out_path}: {run.forecast['unique_id'].nunique()} series x {cfg.horizon} periods")
    print(f"wrote {run.summary_path}: what was done with each series")
    return 3 if run.problems else 0  # some series had bad input and were left out


def _plots_page(args: argparse.Namespace) -> int:
    from . import config, plotspage
    from .dashboard import page

    print(f"wrote {plotspage.write(args.root)}: `dvc plots show` draws offline")
    # the dashboards' own bundle (another Vega-Lite), made once here so that no report stage spends its CPU on it
    cache = config.project_root(args.root) / page.BUNDLE_CACHE
    page.bundle(cache)
    print(f"made {page.bundle_path(cache)}: every dashboard inlines it")
    return 0


def _stage_deps(args: argparse.Namespace) -> int:
    """`datastory stage-deps [--write]`: dvc.yaml's src/ deps against each stage's import closure."""
    from . import config, stagedeps

    root = config.project_root(args.root)
    changes = stagedeps.write(root) if args.write else stagedeps.check(root)
    for change in changes:
        print("\n".join(change.lines()))
    if not changes:
        print("dvc.yaml: every stage's src/ deps are its import closure")
    elif args.write:
        print(f"rewrote dvc.yaml: {len(changes)} stage(s) changed")
    return 1 if changes and not args.write else 0


def _serve(args: argparse.Namespace) -> int:
    """`datastory serve`: runs until Ctrl-C, which main turns into exit 130 like any interrupted command."""
    from . import config
    from .live import serve

    root = config.project_root(args.root)
    p = config.paths(root)
    audiences = list(config.load("report", root).audiences)
    built = [a for a in audiences if p.dashboard(a).is_file()]
    rel = [p.dashboard(a).relative_to(p.reports_dir).as_posix() for a in built]
    missing = [a for a in audiences if a not in built]
    serve.serve(p.reports_dir, rel, missing, args.host, args.port, args.interval,
                echo=lambda line: print(line, flush=True))
    return 0


def _watch(args: argparse.Namespace) -> int:
    """`datastory watch`: exit status of the last run with --once; Ctrl-C stops it (exit 130)."""
    from .live import watch

    return watch.watch(watch.project(args.root), args.interval, args.once,
                       echo=lambda line: print(line, flush=True))


def _dispatch(args: argparse.Namespace) -> int:
    """The pipeline's commands and the checks (what `dvc repro` runs: its stages' code is this function's)."""
    from . import config, stages

    cmd = args.command
    config.load_dotenv(args.root)
    if cmd in PIPELINE:
        for _ in config.checks(args.root, data=PIPELINE[cmd]):
            pass
    if cmd == "sample":
        path, generated = stages.sample(args.root)
        if generated:
            print(f"wrote {path}")
        else:
            print(f"source is {config.load('data', args.root).source}: the sample company is not generated; wrote "
                  f"{path} with no rows (the sample stage's output)")
        if args.invoice_log:
            print(f"wrote {stages.invoice_log(args.invoice_log, args.root, path if generated else None)}")
    elif cmd in ("ingest", "kpis", "forecast", "churn"):
        print(f"executed {stages.notebook(cmd, args.root)}")
    elif cmd == "report":
        for path in stages.report(args.audience, args.root):
            print(f"wrote {path}")
    elif cmd == "deliver":
        r = stages.deliver(args.audience, args.root, force=args.force, resend=args.resend,
                           mark_sent=args.mark_sent)
        if r.sent:
            some = f"{len(r.sent_to)} of " if len(r.sent_to) < r.recipients else ""
            status = f"sent to {some}{r.recipients} recipient(s)" + (f"; {r.skipped}" if r.skipped else "")
        else:
            status = r.skipped if args.mark_sent else f"not sent: {r.skipped}"
        print(f"{r.audience}: wrote {r.eml}; {status}")
        return 0 if r.complete else 3   # 3: nothing failed now, but not every recipient surely has it
    elif cmd == "check-data":
        lines, refusal = stages.check_data(args.root)
        for line in lines:
            print(line)
        if refusal is not None:   # the summary above says what the data holds; the error, why it cannot run
            sys.stdout.flush()
            raise refusal
    elif cmd == "check-params":
        for line in config.checks(args.root):
            print(line, flush=True)
        print("effective settings (defaults included):")
        for line in config.settings(args.root):
            print(f"  {line}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "forecast-file":
            return _forecast_file(args)
        if args.command == "stage-deps":
            return _stage_deps(args)
        if args.command == "plots-page":
            return _plots_page(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "watch":
            return _watch(args)
        if os.environ.get("DATASTORY_TIMINGS"):   # bench/pipeline.py: the command's own seconds, beside DVC's
            from .runner import timed

            with timed(args.command, "command", getattr(args, "audience", None), since_start=True):
                return _dispatch(args)
        return _dispatch(args)
    except DatastoryError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"datastory: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("datastory: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: still no bare traceback unless asked
        if args.debug:
            traceback.print_exc()
        print(f"datastory: internal error: {type(exc).__name__}: {exc}\n"
              "  run again with `datastory --debug ...` for the traceback, and please report it",
              file=sys.stderr)
        return 1


def entry() -> None:
    """The `datastory` command: main(), then the process's exit without the interpreter's last search for cycles.

    Once a command has run, what it writes is written and closed. At exit the interpreter would still walk every
    object the imports made (pandas, pyarrow, matplotlib) looking for reference cycles: about 0.2 s of every
    command, so of every DVC stage. gc.freeze() takes them out of that search. Exit handlers and module clean-up
    still run. Only the exiting process calls it: main(), which tests call in their own process, leaves the
    collector alone.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
