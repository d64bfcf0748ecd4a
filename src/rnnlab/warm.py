"""Fill numba's cache with every kernel the pipeline runs: ``python -m rnnlab.warm [one_layer|rest]``.

``make setup`` runs the two parts at once, one process per core (``models.WARM_UP_PARTS``);
without a part, one process compiles everything. Afterwards every stage, queued experiment and
test loads the kernels from the cache in about half a second instead of compiling them.
No stage imports this module, so editing it reruns nothing in ``dvc repro``.
"""

from __future__ import annotations

import sys
import time

import torch

from rnnlab import ball, closed_loop
from rnnlab.models import ModelConfig, build_stack


def warm_up_closed_loop() -> None:
    """The closed-loop objective's kernels (``sine.train.horizon``): a recurrent stack's and the MLP's."""
    x = torch.zeros(1, 1, 2, 1)
    with torch.random.fork_rng():
        for kind in ("gru", "mlp"):
            stack = build_stack(ModelConfig(kind, hidden_size=2), [0])
            closed_loop.train_step(stack, x, torch.zeros(1, 2, 1), None, horizon=2)


def warm_up(part: str | None = None) -> float:
    """Every kernel (``part`` None) or one of ``models.WARM_UP_PARTS``; the closed loop goes with "rest",
    the shorter half. Returns the seconds it took."""
    start = time.perf_counter()
    ball.warm_up_kernels(part)
    if part != "one_layer":
        warm_up_closed_loop()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    part = args[0] if args else None
    try:
        seconds = warm_up(part)  # models.warm_up refuses an unknown part before compiling anything
    except ValueError as error:
        print(f"rnnlab.warm: {error}", file=sys.stderr)
        return 2
    print(f"kernels ({part or 'all'}) ready in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
