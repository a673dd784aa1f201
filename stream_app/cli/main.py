"""The ``trendcast`` command line.

Every user error (a bad argument, a bad setting, an unreachable broker) ends
in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer

from stream_app.worker.broker import BrokerError, EmbeddedBroker
from stream_app.requests import BadRequest
from stream_app.settings import Settings, SettingsError, load_settings

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="trendcast: real-time demand forecasts and lifecycle alerts from click, cart and order events.",
)


# An error the user can fix, printed as one line (exit 2): the one type every command's edge raises.
UserError = BadRequest


@contextlib.contextmanager
def broker_for(settings: Settings, *, embedded_ok: bool) -> Iterator[Settings]:
    """Yield settings with a broker: the configured one, or an embedded Tansu started here."""
    if settings.broker:
        yield settings
        return
    if not embedded_ok:
        raise UserError("no broker configured: set TRENDCAST_BROKER=kafka://host:port")
    with EmbeddedBroker() as broker:
        yield settings.model_copy(update={"broker": broker.url})


@cli.command()
def worker() -> None:
    """Run the worker against TRENDCAST_BROKER until Ctrl-C or SIGTERM."""
    from stream_app.worker.runner import run_worker

    settings = load_settings()
    if not settings.broker:
        raise UserError("no broker configured: set TRENDCAST_BROKER=kafka://host:port (or use 'trendcast demo')")
    run_worker(settings)


@cli.command()
def demo(
    duration: Optional[float] = typer.Option(None, min=1, help="Stop after this many seconds (default: Ctrl-C)."),
    skus: int = typer.Option(200, min=1, max=1_000_000, help="SKUs in the simulated catalogue."),
    days: int = typer.Option(60, min=2, max=3650, help="Days of events to simulate."),
    speed: float = typer.Option(
        86_400.0, min=1.0, help="Event-time seconds sent per wall-clock second (86400: a day per second)."
    ),
    seed: int = typer.Option(7, help="Random seed of the simulated catalogue."),
) -> None:
    """Embedded broker + simulated events + worker; prints forecasts and alerts as they arrive."""
    from stream_app.cli.demo import run_demo

    settings = load_settings()
    with broker_for(settings, embedded_ok=True) as s:
        run_demo(s, duration=duration, skus=skus, days=days, speed=speed, seed=seed)


@cli.command()
def produce(
    file: Path = typer.Argument(..., help="JSON lines: {\"topic\": ..., \"value\": {...}} per line, or plain events with --topic."),
    topic: Optional[str] = typer.Option(None, help="Topic for lines that are plain events."),
    speedup: Optional[float] = typer.Option(None, min=0.001, help="Pace by event time divided by this; default: as fast as possible."),
) -> None:
    """Send a JSON-lines file of events to their topics (key = sku)."""
    from stream_app.worker.kafka_io import produce_file
    from stream_app.worker.runner import prepare_broker
    from stream_app.worker.security import aiokafka_kwargs

    if not file.is_file():
        raise UserError(f"no such file: {file}")
    settings = load_settings()
    if not settings.broker:
        raise UserError("no broker configured: set TRENDCAST_BROKER=kafka://host:port")
    asyncio.run(prepare_broker(settings))
    counts = asyncio.run(
        produce_file(settings.bootstrap, file, default_topic=topic, speedup=speedup, progress=sys.stderr.isatty(),
                     client=aiokafka_kwargs(settings))
    )
    typer.echo(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))


def _date_ms(text: str | None, option: str) -> int | None:
    """A ``YYYY-MM-DD`` option as epoch ms at that UTC midnight."""
    from stream_app.requests import DAY_MS, day_of

    day = day_of(text, option)
    return None if day is None else day * DAY_MS


def _broker_settings() -> Settings:
    settings = load_settings()
    if not settings.broker:
        raise UserError("no broker configured: set TRENDCAST_BROKER=kafka://host:port")
    return settings


@cli.command()
def simulate(
    out: Optional[Path] = typer.Option(None, help="Folder for events per topic, labels.csv and simulation.json "
                                                  "(default ./simulation unless --kafka)."),
    kafka: bool = typer.Option(False, "--kafka", help="Send the events to TRENDCAST_BROKER."),
    speedup: Optional[float] = typer.Option(None, min=0.001, help="With --kafka: event-time seconds per "
                                            "wall-clock second (86400: a day per second); default: as fast as possible."),
    skus: int = typer.Option(300, min=1, max=1_000_000, help="SKUs in the catalogue."),
    days: int = typer.Option(180, min=1, max=3650, help="Days to simulate."),
    start: str = typer.Option("2024-07-01", help="First simulated day (UTC), YYYY-MM-DD."),
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same files."),
    scenarios: str = typer.Option("all", help="Comma-separated: level_shift, promotion, early_decline, seasonal, "
                                              "slow_movers (all: these five), conversion_shift; or all, none."),
    orders_per_sku: float = typer.Option(150.0, min=0.1, help="Median expected order lines over a SKU's lifecycle."),
    level_shift_factor: Optional[float] = typer.Option(None, min=0.01, help="Demand factor of the level shift "
                                                       "(2: doubles); default: 0.6 or 1.6, drawn from the seed."),
) -> None:
    """Simulate product lifecycles with known stages: events per topic, and the true stage per SKU and day."""
    from stream_app.cli.datacli import run_simulate
    from stream_app.sim import Scenarios, Simulator

    if speedup is not None and not kafka:
        raise UserError("--speedup paces sending to Kafka: add --kafka")
    try:
        chosen = Scenarios.parse(scenarios)
    except ValueError as exc:
        raise UserError(f"--scenarios: {exc}") from None
    if level_shift_factor is not None:
        if not chosen.on("level_shift"):
            raise UserError("--level-shift-factor needs the level_shift scenario in --scenarios")
        chosen = dataclasses.replace(chosen, level_shift_factors=(level_shift_factor,))
    settings = _broker_settings() if kafka else load_settings()
    sim = Simulator(skus, days, _date_ms(start, "--start"), seed, orders_per_sku=orders_per_sku, scenarios=chosen)
    out = out if out is not None or kafka else Path("simulation")
    for line in run_simulate(settings, sim, out=out, kafka=kafka, speedup=speedup, progress=sys.stderr.isatty()):
        typer.echo(line)


@cli.command()
def replay(
    path: Path = typer.Argument(..., help="The dataset: a file (UCI Online Retail CSV, .gz allowed) or a folder of "
                                          "event files."),
    source: str = typer.Option("uci", help="Adapter: uci (UCI Online Retail) or events (our JSON-lines files)."),
    out: Optional[Path] = typer.Option(None, help="Write events per topic to this folder instead of sending them."),
    speedup: Optional[float] = typer.Option(None, min=0.001, help="Event-time seconds per wall-clock second "
                                            "(86400: a day per second); default: as fast as possible."),
    since: Optional[str] = typer.Option(None, help="Only events from this UTC day on (YYYY-MM-DD)."),
    until: Optional[str] = typer.Option(None, help="Only events before this UTC day (YYYY-MM-DD)."),
) -> None:
    """Replay a real dataset (or event files) into the topics, in event-time order, at any speed."""
    from stream_app.cli.datacli import run_replay
    from stream_app.data.replay import ADAPTERS

    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    if source not in ADAPTERS:
        raise UserError(f"unknown --source {source!r}; one of: {', '.join(ADAPTERS)}")
    if speedup is not None and out is not None:
        raise UserError("--speedup paces sending to Kafka; it does not apply with --out")
    settings = _broker_settings() if out is None else load_settings()
    adapter = ADAPTERS[source](path, since_ms=_date_ms(since, "--since"), until_ms=_date_ms(until, "--until"))
    try:
        lines = run_replay(settings, adapter, out=out, speedup=speedup, progress=sys.stderr.isatty())
    except (ValueError, OSError) as exc:  # a file that is not what the adapter reads
        raise UserError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    for line in lines:
        typer.echo(line)


@cli.command()
def evaluate(
    data: Path = typer.Option(..., help="The dataset: a UCI Online Retail CSV (.gz allowed) or a folder of event "
                                        "files (e.g. from 'trendcast simulate')."),
    source: Optional[str] = typer.Option(None, help="uci (UCI Online Retail, through the replay adapter) or events "
                                                    "[default: uci; events with --scenarios]."),
    from_: str = typer.Option(..., "--from", help="First origin day, UTC (YYYY-MM-DD); with --scenarios the first "
                                                  "scored day."),
    until: str = typer.Option(..., help="Last day of the evaluation period, inclusive (YYYY-MM-DD)."),
    out: Path = typer.Option(Path("evaluation"), help="Report folder: metrics.json, summary.md, PNG plots."),
    labels: Optional[Path] = typer.Option(None, help="A simulator labels.csv: true stages (stage F1, error by stage; "
                                                     "with --scenarios default DATA/labels.csv)."),
    model: str = typer.Option("default", help="A checkpoint path, 'default' (the committed one) or 'none'; "
                                              "with --scenarios also 'ewma' (the worker's baseline)."),
    origins_every: Optional[int] = typer.Option(None, min=1, help="Days between origins [default: 7]."),
    baselines: Optional[str] = typer.Option(None, help="Comma-separated reference forecasters, 'all' or 'none': "
                                                       "ewma, snaive7, ma28, autoets, croston, tsb, holtwinters, "
                                                       "weekly-quantiles, lightgbm (needs the eval extra) "
                                                       "[default: all]."),
    max_skus: Optional[int] = typer.Option(None, min=1, help="Evaluate at most this many SKUs with sales."),
    ablations: Optional[str] = typer.Option(None, help="Also score the model with inputs taken away: 'all', 'none' "
                                                       "or some of text, clicks (clicks and carts) [default: all]."),
    scenarios: Optional[str] = typer.Option(None, help="Drift scenarios instead of the backtest: replay a simulator "
                                                       "run day by day with and without calibration and score "
                                                       "'all' or some of level_shift, promotion, early_decline."),
    retrain_every: Optional[int] = typer.Option(None, min=1, help="Weekly retraining instead of the backtest: a "
                                                "worker retraining every this many days against the same worker "
                                                "frozen, on what each publishes."),
    retrain_from: Optional[str] = typer.Option(None, help="With --retrain-every: the day of the first retrain "
                                                          "(YYYY-MM-DD) [default: the day before --from]."),
    cold_starts: bool = typer.Option(False, "--cold-starts", help="Cold starts instead of the backtest: each SKU "
                                     "first sold from --from to --until forecast the day before from its text alone "
                                     "(no text, pretrained and fine-tuned embeddings)."),
) -> None:
    """Backtest the model against reference baselines, or with --scenarios replay drift scenarios; writes a report."""
    from stream_app.cli.evalcli import EvalRequest, parse_ablations, parse_baselines, run_evaluate
    from stream_app.requests import day_of

    command = " ".join(["trendcast", *sys.argv[1:]])
    if cold_starts:
        from stream_app.cli.coldstartcli import ColdStartRequest, run_cold_starts

        given = [k for k, v in {"--origins-every": origins_every, "--baselines": baselines, "--max-skus": max_skus,
                                "--ablations": ablations, "--scenarios": scenarios, "--labels": labels,
                                "--retrain-every": retrain_every, "--retrain-from": retrain_from}.items()
                 if v is not None]
        if given:
            raise BadRequest(f"{', '.join(given)}: not with --cold-starts")
        req = ColdStartRequest(data=data, source=source or "uci", first_day=day_of(from_, "--from"),
                               last_day=day_of(until, "--until"), out=out, command=command)
        for line in run_cold_starts(req):
            typer.echo(line)
        return
    if retrain_every is not None:
        from stream_app.cli.continualcli import ContinualRequest, run_continual

        given = [k for k, v in {"--origins-every": origins_every, "--baselines": baselines, "--max-skus": max_skus,
                                "--ablations": ablations, "--scenarios": scenarios, "--labels": labels}.items()
                 if v is not None]
        if given:
            raise BadRequest(f"{', '.join(given)}: not with --retrain-every")
        first = day_of(from_, "--from")
        req = ContinualRequest(data=data, source=source or "uci", first_day=first, last_day=day_of(until, "--until"),
                               every=retrain_every, out=out, model=model, command=command,
                               retrain_from=first - 1 if retrain_from is None else day_of(retrain_from, "--retrain-from"))
        for line in run_continual(req, echo=typer.echo):
            typer.echo(line)
        return
    if retrain_from is not None:
        raise BadRequest("--retrain-from needs --retrain-every")
    if scenarios is not None:
        _evaluate_drift(data, source, day_of(from_, "--from"), day_of(until, "--until"), out, labels, model,
                        scenarios, command, backtest_only={"--origins-every": origins_every,
                                                           "--baselines": baselines, "--max-skus": max_skus,
                                                           "--ablations": ablations})
        return
    req = EvalRequest(data=data, source=source or "uci", first_day=day_of(from_, "--from"),
                      last_day=day_of(until, "--until"), out=out, labels=labels, model=model,
                      every=origins_every or 7, baselines=parse_baselines(baselines or "all"),
                      named_baselines=baselines not in (None, "all"),
                      max_skus=max_skus, ablations=parse_ablations(ablations or "all"), command=command)
    for line in run_evaluate(req, progress=sys.stderr.isatty()):
        typer.echo(line)


@cli.command()
def forecast(
    data: Path = typer.Option(..., help="The dataset: a UCI Online Retail CSV (.gz allowed) or a folder of event files."),
    source: str = typer.Option("uci", help="uci (UCI Online Retail, through the replay adapter) or events."),
    as_of: str = typer.Option(..., "--as-of", help="Dates, comma-separated (YYYY-MM-DD): the forecasts the worker "
                                                   "publishes at the end of the day before each (as_of = that "
                                                   "date's 00:00 UTC)."),
    out: Path = typer.Option(..., help="JSON-lines file of the forecast messages (the forecasts topic's contract)."),
    model: Optional[Path] = typer.Option(None, help="A checkpoint file [default: TRENDCAST_MODEL_PATH, else the "
                                                    "shipped one]."),
) -> None:
    """Compute offline the forecasts a worker would have published, from the data and the worker's own day loop."""
    from stream_app.cli.forecastcli import as_of_days, run_forecast

    days = as_of_days(as_of)
    if model is not None and not model.is_file():
        raise BadRequest(f"--model {model}: no such file")
    settings = load_settings(**({"model_path": str(model)} if model is not None else {}))
    for line in run_forecast(settings, data, source, days, out):
        typer.echo(line)


@cli.command("fit-confidence")
def fit_confidence(
    data: Path = typer.Option(..., help="Validation data: a simulator run not used for training (folder of event "
                                        "files) or a shop's history (a UCI Online Retail CSV)."),
    source: str = typer.Option("auto", help="auto (a folder is events, a file uci), events or uci."),
    labels: Optional[Path] = typer.Option(None, help="A simulator run's labels.csv [default: DATA/labels.csv]; a UCI "
                                                     "file is judged by the hindsight rule instead."),
    from_: str = typer.Option(..., "--from", help="First day whose stage alerts are judged (YYYY-MM-DD)."),
    until: str = typer.Option(..., help="Last day, inclusive (YYYY-MM-DD)."),
    read_until: Optional[str] = typer.Option(None, help="Last day of the data read (YYYY-MM-DD) [default: all]; "
                                                        "the hindsight rule sees up to it. Keep test months out."),
    model: Optional[Path] = typer.Option(None, help="The checkpoint [default: TRENDCAST_MODEL_PATH, else the "
                                                    "shipped one]."),
    write: bool = typer.Option(False, "--write", help="Store the map in the checkpoint's metadata."),
) -> None:
    """Fit what a stage alert's confidence means (share of alerts right) on validation data; store it with --write."""
    from stream_app.cli.confidencecli import run_fit_confidence
    from stream_app.requests import BadRequest, day_of

    if source not in ("auto", "events", "uci"):
        raise BadRequest(f"--source {source}: give auto, events or uci")
    if source == "auto":
        source = "events" if data.is_dir() else "uci"
    if model is not None and not model.is_file():
        raise BadRequest(f"--model {model}: no such file")
    settings = load_settings(forecaster="model", **({"model_path": str(model)} if model is not None else {}))
    for line in run_fit_confidence(settings, data, labels, day_of(from_, "--from"), day_of(until, "--until"), write,
                                   source=source, read_until=None if read_until is None
                                   else day_of(read_until, "--read-until")):
        typer.echo(line)


def _evaluate_drift(data, source, first_day, last_day, out, labels, model, scenarios, command, backtest_only) -> None:
    from stream_app.cli.driftcli import DriftRequest, parse_scenarios, run_drift

    given = [k for k, v in backtest_only.items() if v is not None]
    if given:
        raise BadRequest(f"{', '.join(given)}: backtest options; they do not apply with --scenarios")
    if source not in (None, "events"):
        raise BadRequest("--scenarios replays a simulator folder: --source events (or leave it out)")
    req = DriftRequest(data=data, first_day=first_day, last_day=last_day, out=out, labels=labels, model=model,
                       scenarios=parse_scenarios(scenarios), command=command)
    for line in run_drift(req, progress=sys.stderr.isatty()):
        typer.echo(line)


@cli.command()
def train(
    data: list[Path] = typer.Option(..., help="A dataset (repeatable): a folder of event files (e.g. from "
                                              "'trendcast simulate', with its labels.csv) or a UCI Online Retail CSV."),
    source: str = typer.Option("auto", help="auto (a folder is events, a file uci), events or uci."),
    out: Path = typer.Option(Path("checkpoint.pt"), help="Checkpoint to write; its metadata goes beside it (.json)."),
    epochs: int = typer.Option(30, min=1, help="Most epochs (early stopping ends sooner)."),
    seed: int = typer.Option(11, help="Random seed (weights, shuffling)."),
    train_until: Optional[str] = typer.Option(None, help="Last day a training target may reach (YYYY-MM-DD); "
                                                         "with --valid-until. Default: 70 % of each dataset."),
    valid_until: Optional[str] = typer.Option(None, help="Last day of the validation period (YYYY-MM-DD); nothing "
                                                         "after it is read. Default: 85 % of each dataset."),
    every: int = typer.Option(2, min=1, help="Days between sample origins."),
    batch_size: int = typer.Option(2048, min=16, help="Samples per Adam step."),
    lr: float = typer.Option(3e-3, min=1e-6, help="Adam learning rate."),
    patience: int = typer.Option(4, min=1, help="Epochs without a better validation loss before stopping."),
    members: int = typer.Option(1, min=1, help="Networks to train from seeds SEED, SEED+1, ... and average "
                                               "(one checkpoint)."),
    text_cache: Optional[Path] = typer.Option(None, help="Folder to cache product-text embeddings in."),
    device: str = typer.Option("auto", help="Text-encoder device: auto (cuda when available), cpu, cuda."),
    teacher: Optional[Path] = typer.Option(None, help="A checkpoint to distil: the network also learns its "
                                                      "quantiles (one network of an ensemble's accuracy)."),
    distill_weight: float = typer.Option(1.0, min=0.0, help="Weight of the teacher's quantiles against the "
                                                            "pinball loss (with --teacher)."),
) -> None:
    """Train the forecasting network on event files or a real dataset; writes a checkpoint and its metadata."""
    from stream_app.requests import day_of
    from stream_app.cli.traincli import TrainRequest, run_train

    req = TrainRequest(data=list(data), source=source, out=out, train_until=day_of(train_until, "--train-until"),
                       valid_until=day_of(valid_until, "--valid-until"), every=every, text_cache=text_cache,
                       device=device, teacher=teacher,
                       overrides={"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr,
                                  "patience": patience, "members": members, "distill_weight": distill_weight},
                       command=" ".join(["trendcast", *sys.argv[1:]]))
    for line in run_train(req, progress=sys.stderr.isatty()):
        typer.echo(line)


@cli.command()
def retrain(
    every: Optional[str] = typer.Option(None, help="Run a cycle now and then every interval (7d, 12h, 30m); "
                                                   "unset: one cycle."),
    model: Optional[Path] = typer.Option(None, help="The serving checkpoint while the models topic has none "
                                                    "(default: TRENDCAST_MODEL_PATH, else the shipped one)."),
    holdout_days: int = typer.Option(14, min=1, help="Newest forecast days held back to judge the candidate."),
    recent_days: int = typer.Option(56, min=1, help="Forecast days before them trained on in full."),
    replay_share: float = typer.Option(0.5, min=0.0, help="Older samples replayed, as a share of the recent ones."),
    margin: float = typer.Option(0.02, help="Promote only if the candidate's 7-day WAPE on the held-back days is "
                                            "this share below the serving model's."),
    coverage_slack: float = typer.Option(0.02, min=0.0, help="How much further from 80% the candidate's p10-p90 "
                                                             "coverage may be than the serving model's."),
    newest_slack: float = typer.Option(0.0, help="How much worse (a share) the candidate may be on the 1-day "
                                                 "outcomes of the days after the held-back ones."),
    epochs: int = typer.Option(4, min=1, help="Epochs of fine-tuning from the serving weights."),
    lr: float = typer.Option(5e-4, min=1e-7, help="Adam learning rate of the fine-tuning."),
    device: str = typer.Option("auto", help="Where the candidate trains: auto (CUDA when present), cpu, cuda."),
) -> None:
    """Learn from the outcomes workers published: warm-start the serving model, promote it to the models topic if better."""
    from models.retraining import RetrainRules
    from stream_app.cli.retraincli import parse_every, run_retrain

    every_s = parse_every(every)
    rules = RetrainRules(holdout_days=holdout_days, recent_days=recent_days, replay_share=replay_share,
                         margin=margin, coverage_slack=coverage_slack, newest_slack=newest_slack, epochs=epochs,
                         lr=lr)
    run_retrain(_broker_settings(), rules, every_s, None if model is None else str(model), typer.echo, device)


@cli.command()
def tail(
    topic: str = typer.Argument(..., help="Topic to print, e.g. forecasts, stage-alerts, dead-letters."),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Start at the oldest message."),
    limit: Optional[int] = typer.Option(None, min=1, help="Stop after this many messages."),
    timeout: Optional[float] = typer.Option(None, min=0.1, help="Stop when nothing arrives for this many seconds."),
) -> None:
    """Print a topic's messages as JSON lines (key, partition, offset, value)."""
    import orjson

    from stream_app.worker.broker import wait_until_answers
    from stream_app.worker.kafka_io import tail as tail_topic
    from stream_app.worker.security import aiokafka_kwargs

    settings = load_settings()
    if not settings.broker:
        raise UserError("no broker configured: set TRENDCAST_BROKER=kafka://host:port")

    client = aiokafka_kwargs(settings)

    async def run() -> None:
        await wait_until_answers(settings.bootstrap, settings.connect_timeout_s, client=client)
        async for key, value, partition, offset in tail_topic(
            settings.bootstrap, topic, from_beginning=from_beginning, limit=limit, timeout_s=timeout, client=client
        ):
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            line = {"key": key, "partition": partition, "offset": offset, "value": value}
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
            sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@cli.command()
def explore(
    port: int = typer.Option(8050, min=0, max=65535, help="Port of the page (0: any free one, printed)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to reach it from other machines)."),
) -> None:
    """Serve the forecast explorer: search a SKU, see its sales, forecasts, stages and alerts (from the topics)."""
    from stream_app.cli.explorecli import run_explore

    run_explore(_broker_settings(), host, port, typer.echo)


@cli.command()
def bench(
    events: int = typer.Option(400_000, min=10_000, help="Events in the throughput run."),
    skus: int = typer.Option(100_000, min=100, help="Distinct SKUs (each gets at least one event)."),
    days: int = typer.Option(14, min=2, help="Days of event time the events span."),
    output: Path = typer.Option(Path("docs/BENCHMARKS.md"), help="Markdown report to write."),
    profile: Path | None = typer.Option(
        None, help="Also record a py-spy profile of the worker's throughput run to this file (collapsed stacks)."
    ),
    part: str = typer.Option("all", help="worker (on the broker), scoring (model throughput, no broker), all (both), "
                             "or scaling (the worker's throughput, memory and tick share at each --scaling-skus "
                             "size; not in all: a million SKUs take ~20 min)."),
    scoring_skus: int = typer.Option(200_000, min=1000, help="SKUs scored per batch size in the scoring part."),
    scaling_skus: str = typer.Option("10000,100000,1000000", help="SKU counts of the scaling part, comma-separated."),
    events_per_sku: int = typer.Option(4, min=1, help="Events per SKU at each size of the scaling part."),
    membership: str = typer.Option(
        "static", help="static (each worker under its own TRENDCAST_GROUP_INSTANCE_ID, as deploy/k8s runs them) "
        "or dynamic group membership of the worker part's workers."
    ),
) -> None:
    """Measure the worker on the embedded broker (throughput vs raw consumer, latency, memory, recovery) and
    the model's scoring throughput (SKUs/s on TRENDCAST_DEVICE); each part rewrites its section of the report."""
    from stream_app.cli.bench import py_spy, run_bench, write_section

    if part not in ("all", "worker", "scoring", "scaling"):
        raise UserError(f"unknown --part {part!r}; one of: all, worker, scoring, scaling")
    from stream_app.cli.bench_scaling import parse_sizes, run_scaling

    try:
        sizes = parse_sizes(scaling_skus)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if membership not in ("static", "dynamic"):
        raise UserError(f"unknown --membership {membership!r}; one of: static, dynamic")
    if profile is not None and py_spy() is None:
        raise UserError("--profile needs py-spy: install the dev extra (pip install -e '.[dev]')")

    settings = load_settings()
    if part in ("all", "scoring"):
        from stream_app.cli.bench_scoring import run_scoring_bench, scoring_report

        res = run_scoring_bench(settings, skus=scoring_skus, batch_sizes=(1024, 2048, 8192))
        write_section(output, f"scoring-{res['device']}", scoring_report(res))
        for r in res["runs"]:
            typer.echo(f"scoring {res['model']} on {res['device']}: batch {r['batch_size']:,}: "
                       f"{r['skus_per_s']:,.0f} SKUs/s state to forecast, "
                       f"{r['features_network_skus_per_s']:,.0f} SKUs/s features + network")
    if part in ("all", "worker"):
        with broker_for(settings, embedded_ok=True) as s:
            run_bench(s, events=events, skus=skus, days=days, output=output, profile=profile,
                      static=membership == "static")
    if part == "scaling":
        with broker_for(settings, embedded_ok=True) as s:
            run_scaling(s, sizes=sizes, events_per_sku=events_per_sku, days=days, output=output)


@cli.command()
def config() -> None:
    """Print the effective settings (from defaults, TRENDCAST_* variables and .env), secrets masked."""
    from stream_app.settings_doc import effective

    for name, value in effective(load_settings()).items():
        typer.echo(f"{name}={value}")


def main() -> None:
    """Console entry point: run the CLI, turning user errors into one line and exit code 2."""
    from stream_app.worker.kafka_io import KafkaUnavailable

    try:
        cli(standalone_mode=False)
    except (UserError, SettingsError, BrokerError, KafkaUnavailable) as exc:
        typer.echo(f"trendcast: {exc}", err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Usage errors of the click that typer vendors (typer._click): matched
        # by shape, as typer does not export the class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.echo(f"trendcast: {exc.format_message()} (see 'trendcast --help')", err=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
