"""Atomic writing and checkpoints: an interrupted write leaves the old file or nothing, never a
part; a run folder has a complete checkpoint or none, whatever was killed when."""

import json
import os

import pytest
import torch

from radiogen.atomic import atomic_dir, atomic_path, remove_temporaries
from radiogen.config import ModelConfig
from radiogen.training import checkpoint
from radiogen.training.checkpoint import latest_checkpoint, save_checkpoint


def test_interrupted_file_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    with atomic_path(target, fsync=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_model_files_get_the_permissions_of_a_plain_write(tmp_path):
    # safetensors writes 0600; a shipped or shared model file must be readable as any file is
    mask = os.umask(0o022)
    try:
        path = checkpoint.save_model_file(tmp_path / "m.safetensors", {"w": torch.zeros(2)},
                                          ModelConfig(), {})
    finally:
        os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_interrupted_folder_write_leaves_the_old_folder(tmp_path):
    target = tmp_path / "step"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask      # as mkdir makes it, not 0700
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            raise RuntimeError("disk full")
    assert (target / "a").read_text() == "1" and len(list(tmp_path.iterdir())) == 1


def test_remove_temporaries_clears_what_a_kill_left(tmp_path):
    (tmp_path / ".latest.json.x1.tmp").write_text("")
    (tmp_path / ".step-0000002.x2.tmp").mkdir()
    (tmp_path / ".step-0000004.old").mkdir()
    (tmp_path / "step-0000006").mkdir()
    (tmp_path / "notes.tmp").write_text("not ours: not hidden")
    removed = remove_temporaries(tmp_path)
    assert len(removed) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "step-0000006"]


def _save(run, step, keep=2):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())
    return save_checkpoint(run, step, model, model, optimizer, ModelConfig(), {}, keep=keep)


def test_first_checkpoint_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    run = tmp_path / "run"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoint.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        _save(run, 2)
    assert not (run / "checkpoints").exists() and latest_checkpoint(run) is None
    monkeypatch.undo()
    (run / ".checkpoints.abc.tmp").mkdir()                   # as a kill -9 would leave it
    assert _save(run, 2) == run / "checkpoints" / "step-0000002"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"]
    assert latest_checkpoint(run).name == "step-0000002"


def test_latest_checkpoint_survives_a_broken_pointer(tmp_path):
    run = tmp_path / "run"
    for step in (2, 4, 6):
        _save(run, step, keep=5)
    root = run / "checkpoints"
    (root / "step-0000006" / "training_state.pt").unlink()  # a folder damaged by hand
    (root / "latest.json").write_text(json.dumps({"step": 8, "checkpoint": "step-0000008"}))
    assert latest_checkpoint(run).name == "step-0000004"
    (root / "latest.json").write_text("{trunc")
    assert latest_checkpoint(run).name == "step-0000004"


def test_pruning_keeps_the_newest_and_drops_checkpoints_beyond_the_step(tmp_path):
    run = tmp_path / "run"
    for step in (2, 4, 6, 8):
        _save(run, step, keep=2)
    root = run / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-0000006",
                                                      "step-0000008"]
    _save(run, 6, keep=2)         # a run resumed from an older pointer writes step 6 again
    assert sorted(p.name for p in root.iterdir()) == ["latest.json", "step-0000006"]
    assert latest_checkpoint(run).name == "step-0000006"
