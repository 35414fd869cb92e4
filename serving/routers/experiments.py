"""`GET /admin/experiments` (what runs, what was refused and why) and
`POST /admin/experiments/{name}/stop` (stop one now: its file is marked stopped, every request
after it gets the champion; no restart)."""

from fastapi import APIRouter, HTTPException, status
from starlette.concurrency import run_in_threadpool

from experiments import Experiment
from serving.dependencies import Admin

router = APIRouter(prefix="/admin/experiments", tags=["admin"])


def _describe(experiment: Experiment) -> dict:
    return {
        "name": experiment.name,
        "surface": experiment.surface,
        "start": experiment.start.isoformat(),
        "end": experiment.end.isoformat(),
        "stopped": experiment.stopped,
        "arms": [
            {"name": a.name, "model": a.model, "traffic": [a.low, a.high]} for a in experiment.arms
        ],
    }


@router.get("")
async def list_experiments(state: Admin) -> dict:
    assert state.experiments is not None
    registry = state.experiments.registry
    await run_in_threadpool(registry.refresh, True)
    return {
        "experiments": [_describe(e) for e in registry.experiments.values()],
        "refused": registry.errors,
    }


@router.post("/{name}/stop")
async def stop_experiment(name: str, state: Admin) -> dict:
    assert state.experiments is not None
    registry = state.experiments.registry
    if name not in registry.experiments:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown experiment {name!r}")
    experiment = await run_in_threadpool(registry.stop, name)
    return _describe(experiment)
