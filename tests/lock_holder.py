"""A second process holding a run folder on cue, for the one-writer tests (test_corpus.py).

``python lock_holder.py RUN READY GO [--resume] [SECTION.KEY=VALUE ...]`` trains (or
resumes) RUN through ``train_run`` with a callback that, once training starts (the
folder is held), creates READY and waits for GO to exist before training on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from zspace.training import Callback, train_run


class Hold(Callback):
    def __init__(self, ready: Path, go: Path) -> None:
        self.ready, self.go = ready, go

    def on_train_start(self, trainer) -> None:
        self.ready.touch()
        while not self.go.exists():
            time.sleep(0.01)


if __name__ == "__main__":
    run, ready, go, *rest = sys.argv[1:]
    resume = rest[:1] == ["--resume"]
    sets = rest[1:] if resume else rest
    train_run(
        None, run_dir=run, resume=resume, overrides=sets,
        callbacks=[Hold(Path(ready), Path(go))], progress=False,
    )  # fmt: skip
