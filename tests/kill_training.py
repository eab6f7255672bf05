"""Helper process of ``test_training_kill.py``: imports radiogen once, then forks one training
run per command read from stdin, so that the test can kill runs with SIGKILL without paying
for a fresh interpreter each time.

Commands (one JSON object per line): ``{"run": DIR, "resume": bool, "pause": WHERE or null,
"overrides": [...]}``. The helper answers ``@@ {"pid": PID}`` when the run starts and
``@@ {"exit": CODE, "signal": SIGNAL}`` when it ends. With ``pause`` the run stops inside the
checkpoint writer, says ``@@ {"paused": WHERE}`` and sleeps there, waiting to be killed:

``checkpoint-files``  after the first model file of a checkpoint is written into its temporary
                      folder (for a fresh run: the first checkpoint, which brings the
                      ``checkpoints`` folder into being);
``before-pointer``    after a step folder is in place, before ``latest.json`` names it;
``pruning``           while an old checkpoint is being deleted.

``after-steps:K`` does not stop: the run says ``@@ {"reached": "after-steps:K"}`` after K
training steps and goes on, for the test to kill it a random moment later.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
import types
from pathlib import Path

from radiogen import api
from radiogen.training import checkpoint


def say(message: dict) -> None:
    sys.stdout.write("@@ " + json.dumps(message) + "\n")
    sys.stdout.flush()


def stop_here(where: str) -> None:
    say({"paused": where})
    time.sleep(120)


def install_pause(where: str | None) -> None:
    """Make the checkpoint writer stop at ``where`` (in this forked run only)."""
    if where == "checkpoint-files":
        save = checkpoint.save_model_file

        def save_and_stop(path, *args, **kwargs):
            result = save(path, *args, **kwargs)
            if any(part.endswith(".tmp") for part in Path(path).parts):
                stop_here(where)
            return result
        checkpoint.save_model_file = save_and_stop
    elif where == "before-pointer":
        write = checkpoint._write_pointer

        def stop_then_write(root, *args):
            if root.name == "checkpoints":
                stop_here(where)
            write(root, *args)
        checkpoint._write_pointer = stop_then_write
    elif where == "pruning":
        def rmtree_stopping(path, **kwargs):
            if Path(path).name.startswith(".step-"):
                stop_here(where)
            shutil.rmtree(path, **kwargs)
        checkpoint.shutil = types.SimpleNamespace(rmtree=rmtree_stopping)
    elif where is not None and where.startswith("after-steps:"):
        from radiogen.training.ema import EMA
        update, count, target = EMA.update, [0], int(where.split(":")[1])

        def update_and_count(self, *args, **kwargs):
            update(self, *args, **kwargs)
            count[0] += 1
            if count[0] == target:
                say({"reached": where})          # and go on, to be killed a moment later
        EMA.update = update_and_count
    elif where is not None:
        raise ValueError(f"unknown pause {where!r}")


def run(command: dict) -> None:
    """The forked child: train, then leave without returning into the helper's loop."""
    code = 0
    try:
        install_pause(command.get("pause"))
        api.train("tiny", command["run"], resume=command["resume"],
                  overrides=command["overrides"], progress=False, device="cpu")
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm_up() -> None:
    """Do once, before forking, the slow parts every run repeats: imports and the data."""
    import functools

    import torch
    from torch.utils.tensorboard import SummaryWriter  # noqa: F401

    import radiogen.training.loop  # noqa: F401
    from radiogen.data import datasets

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])   # imports torch._dynamo (seconds)

    datasets.load_first = functools.lru_cache(maxsize=None)(datasets.load_first)
    datasets.load_first("valid")


def main() -> None:
    warm_up()
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run(command)
        say({"pid": pid})
        _, status = os.waitpid(pid, 0)
        say({"exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
