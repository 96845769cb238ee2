"""Trackers: rank 0's per-step record (`progress.jsonl`) mirrored to TensorBoard and Weights & Biases.

Each mirror gets exactly the events `progress.jsonl` gets, in the same call (`progress.ProgressLog`),
turned into per-step numbers by one function (`step_metrics`), so they never disagree: `train/loss`
at every step, `train/tokens_per_s`, `train/lr` and `train/grad_norm` at each logged step, `val/loss`
at each evaluation. TensorBoard files are flushed at every
logged step, because a rank ends with `os._exit` (no atexit flush); a W&B run is finished when the
loop ends or fails (`mirrored`). A W&B run's id is the megaspec run id and its group the spec's
`group` or the sweep's id; it logs offline into `<run dir>/wandb/` on this machine (its cache,
config and logs too: nothing is written outside the run dir, nothing goes over the network) and
online on Modal with the key of the plan's Modal Secret. A tracker that cannot start (its package
missing, no API key) says why once and the run trains on; the receipt names a tracker's run only
when its files are really there.
"""

from __future__ import annotations

import os
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..contract.plan import Plan, wandb_group
from ..contract.receipt import TensorBoardRun, TrackingReport, WandbRun
from ..contract.rundir import TENSORBOARD_DIR, WANDB_DIR, run_id_of
from ..rank.outcome import LaneOutcome

# Where wandb would write outside its run folder (~/.cache/wandb, ~/.config/wandb, ...): into the run's.
WANDB_DIRS = {"WANDB_CACHE_DIR": "cache", "WANDB_CONFIG_DIR": "config", "WANDB_DATA_DIR": "data",
              "WANDB_ARTIFACT_DIR": "artifacts"}


FINISH_TIMEOUT_S = 120.0  # the most a W&B run's finish (its last upload) may hold up the receipt


class TrackerUnavailable(Exception):
    """A tracker that cannot start here; the message says why and what to do."""


def tensorboard_dir(plan: Plan, run_dir: Path) -> Path | None:
    tb = plan.tracking and plan.tracking.tensorboard
    if not tb:
        return None
    return Path(tb.dir) / run_id_of(plan, run_dir) if tb.dir else Path(run_dir) / TENSORBOARD_DIR


# The numbers of a logged step that belong to that step alone (not to each step since the last event).
STEP_KEYS = {"tokens_per_s": "train/tokens_per_s", "lr": "train/lr", "grad_norm": "train/grad_norm"}


def step_metrics(event: dict[str, Any]) -> list[tuple[int, dict[str, float]]]:
    """One progress event as (step, metrics): each step's loss it carries (`losses` ends at `step`) and
    its tokens/s, learning rate and gradient norm at `step`; an evaluation's `val/loss` at its step;
    nothing for a resume marker (the attempt that ran those steps mirrored them)."""
    if "eval" in event:
        return [(event["eval"]["step"], {"val/loss": event["eval"]["loss"]})]
    step = event.get("step")
    if step is None:
        return []
    losses = event.get("losses") or [event["loss"]]
    rows = [(step - len(losses) + 1 + i, {"train/loss": loss}) for i, loss in enumerate(losses)]
    rows[-1][1].update({tag: event[key] for key, tag in STEP_KEYS.items() if event.get(key) is not None})
    return rows


class TensorBoardMirror:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, event: dict[str, Any]) -> None:
        for step, metrics in step_metrics(event):
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def summarize(self, plan: Plan, metrics: dict[str, float]) -> None:
        """The run's settings as TensorBoard hparams, with the receipt's numbers as their metrics (one
        row per run in the HPARAMS tab, so a sweep's runs compare by lr, batch, seed...)."""
        from torch.utils.tensorboard.summary import hparams

        tagged = {f"receipt/{key}": value for key, value in metrics.items()}
        for summary in hparams(hparams_of(plan), tagged):  # into this run's own event file
            self.writer.file_writer.add_summary(summary)
        for tag, value in tagged.items():
            self.writer.add_scalar(tag, value, plan.train.steps)
        self.writer.flush()

    def close(self, failed: bool) -> None:
        self.writer.close()


class WandbMirror:
    def __init__(self, plan: Plan, run_dir: Path):
        w = plan.tracking.wandb
        if w.mode == "online" and not os.environ.get("WANDB_API_KEY"):
            raise TrackerUnavailable(f"WANDB_API_KEY is not set: the Modal Secret `{w.secret}` must hold it "
                                     "(and be listed in `secrets:`)")
        home = Path(run_dir) / WANDB_DIR
        os.environ.update({var: str(home / sub) for var, sub in WANDB_DIRS.items()})
        os.environ["WANDB_ERROR_REPORTING"] = "false"  # no crash reports to W&B's Sentry
        with _temp_files_in(home / "tmp"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # wandb 0.21's models warn at import under pydantic >= 2.12
            import wandb

            self.wandb = wandb
            settings = wandb.Settings(console="off", x_disable_stats=True, save_code=False, disable_git=True,
                                      silent=True)
            # W&B unreachable: init gives up after its 90 s and raises (the run trains on); its service is
            # left to end with this process, as a teardown would wait for it to stop retrying.
            self.run = wandb.init(project=w.project, entity=w.entity, group=wandb_group(plan), name=plan.name,
                                  id=run_id_of(plan, run_dir), resume="allow" if w.mode == "online" else None,
                                  dir=str(run_dir), mode=w.mode, config=_config(plan), settings=settings)
        self.folder = Path(self.run.dir).parent  # `offline-run-<time>-<id>` (`run-...` online)

    def log(self, event: dict[str, Any]) -> None:
        for step, metrics in step_metrics(event):
            self.run.log(metrics, step=step)

    def summarize(self, plan: Plan, metrics: dict[str, float]) -> None:
        """The run's summary is the receipt's numbers (W&B would keep each key's last logged value: the
        last step's tokens/s, not the run's): `receipt/<metric>`, and `train/tokens_per_s` and `train/loss`
        set to the receipt's tokens/s and final loss."""
        summary = {f"receipt/{key}": value for key, value in metrics.items()}
        if "tokens_per_s" in metrics:
            summary["train/tokens_per_s"] = metrics["tokens_per_s"]
        if "final_loss" in metrics:
            summary["train/loss"] = metrics["final_loss"]
        self.run.log({}, commit=True)  # the last step's row first: committed at finish, it would overwrite these
        self.run.summary.update(summary)

    def close(self, failed: bool) -> None:
        """Finish the run within FINISH_TIMEOUT_S: an online run waits for its upload, and a W&B that
        stopped answering must not keep the rank from its receipt (the files stay in the run dir)."""
        finishing = threading.Thread(target=self._finish, args=(failed,), daemon=True)
        finishing.start()
        finishing.join(FINISH_TIMEOUT_S)
        if finishing.is_alive():
            print(f"megaspec: tracking.wandb did not finish within {FINISH_TIMEOUT_S:g} s; the receipt goes on "
                  f"(`wandb sync {self.folder}` uploads it)", flush=True)

    def _finish(self, failed: bool) -> None:
        """Finish the run, then end wandb's service process now (a rank ends with os._exit: no atexit)
        and remove the socket folder it leaves in the temp folder even after a clean teardown."""
        self.run.finish(exit_code=1 if failed else 0)
        self.wandb.teardown()
        for left in Path(tempfile.gettempdir()).glob(f"wandb-{os.getpid()}-*"):
            if left.is_dir() and not any(left.iterdir()):
                left.rmdir()


@contextmanager
def _temp_files_in(folder: Path) -> Iterator[None]:
    """Python temp files made meanwhile go into `folder`: wandb makes its media and artifact folders at
    import, to be removed at interpreter exit, which a rank (ended by `os._exit`) never reaches."""
    folder.mkdir(parents=True, exist_ok=True)
    before, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = before


def _config(plan: Plan) -> dict[str, Any]:
    """What W&B shows beside each run: the settings sweeps vary."""
    return {"train": plan.train.model_dump(mode="json"), "model": plan.model.model_dump(mode="json"),
            "world_size": plan.distributed.world_size, "lane": plan.lane, "megaspec_run_id": plan.run.run_id}


def hparams_of(plan: Plan) -> dict[str, float | int | str | bool]:
    """The settings a sweep varies, as TensorBoard hparams: the train block's scalars and the world size."""
    scalars = {f"train.{k}": v for k, v in plan.train.model_dump(mode="json").items()
               if isinstance(v, int | float | str | bool)}
    return {**scalars, "world_size": plan.distributed.world_size}


def receipt_metrics(outcome: LaneOutcome) -> dict[str, float]:
    """The receipt's measured numbers as rank 0 has them when the loop ends (`measure.summarize`'s, the
    final and minimum loss): what the trackers' summaries say, never a last step's value."""
    numbers = {k: float(v) for k, v in outcome.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if outcome.losses:
        numbers |= {"final_loss": outcome.losses[-1], "min_loss": min(outcome.losses)}
    return numbers


def summarize(mirrors: list, plan: Plan, outcome: LaneOutcome) -> None:
    """Each tracker's run summary set to the receipt's numbers, once the loop has measured them."""
    for mirror in mirrors:
        try:
            mirror.summarize(plan, receipt_metrics(outcome))
        except Exception as e:  # noqa: BLE001 - a tracker never stops the run it mirrors
            print(f"megaspec: a tracker's summary could not be written ({type(e).__name__}: {e})", flush=True)


def _open(name: str, package: str, opener) -> list:
    try:
        return [opener()]
    except ImportError:
        problem = f"the `{package}` package is not installed"
        fix = f"add `{package}` to image.packages, or pip install 'megaspec[tracking]' here"
    except TrackerUnavailable as e:
        problem, fix = str(e), None
    except Exception as e:  # noqa: BLE001 - a tracker never stops the run it mirrors
        problem, fix = f"it could not start ({type(e).__name__}: {e})", None
    print(f"megaspec: tracking.{name} is on but {problem}; the run trains without it"
          + (f" ({fix})" if fix else ""), flush=True)
    return []


def open_mirrors(plan: Plan, run_dir: Path) -> list:
    """The plan's trackers on this (main) rank; none when tracking is off or a tracker cannot start."""
    mirrors = []
    if (log_dir := tensorboard_dir(plan, run_dir)) is not None:
        mirrors += _open("tensorboard", "tensorboard", lambda: TensorBoardMirror(log_dir))
    if plan.tracking is not None and plan.tracking.wandb is not None:
        mirrors += _open("wandb", "wandb", lambda: WandbMirror(plan, run_dir))
    return mirrors


@contextmanager
def mirrored(plan: Plan, run_dir: Path, enabled: bool) -> Iterator[list]:
    """The trackers for the training loop (none when not `enabled`), closed when it ends or fails."""
    mirrors = open_mirrors(plan, run_dir) if enabled else []
    failed = True
    try:
        yield mirrors
        failed = False
    finally:
        for mirror in mirrors:
            mirror.close(failed)


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return path.relative_to(run_dir).as_posix()
    except ValueError:
        return str(path)


def report(plan: Plan, run_dir: Path) -> TrackingReport | None:
    """For the receipt: each tracker's run, when its files were written."""
    if plan.tracking is None:
        return None
    return TrackingReport(tensorboard=_tensorboard_run(plan, Path(run_dir)), wandb=_wandb_run(plan, Path(run_dir)))


def _tensorboard_run(plan: Plan, run_dir: Path) -> TensorBoardRun | None:
    log_dir = tensorboard_dir(plan, run_dir)
    files = sorted(log_dir.glob("events.out.tfevents.*")) if log_dir is not None and log_dir.is_dir() else []
    return TensorBoardRun(event_file=_relative(files[-1], run_dir)) if files else None  # names start with the time


def _wandb_run(plan: Plan, run_dir: Path) -> WandbRun | None:
    w = plan.tracking.wandb
    if w is None:
        return None
    run_id = run_id_of(plan, run_dir)
    folders = sorted(p.parent for p in (run_dir / WANDB_DIR).glob(f"*run-*-{run_id}/run-{run_id}.wandb"))
    if not folders:
        return None
    return WandbRun(run_id=run_id, project=w.project, entity=w.entity, group=wandb_group(plan), mode=w.mode,
                    dir=_relative(folders[-1], run_dir))  # `offline-run-<time>-<id>`: the latest attempt's
