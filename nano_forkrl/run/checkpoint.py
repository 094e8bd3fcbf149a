"""What survives a killed run: checkpoints (a plain HF folder + trainer state) and the metrics log.

A checkpoint is `out_dir/checkpoint/`: `save_pretrained` model and tokenizer (any transformers user can load it)
plus `trainer_state.pt` with the step, the data cursor (how many prompts were consumed), the optimizer state
and every RNG stream (torch CPU, CUDA, the sampler's). Restoring all of them makes `--resume` continue a run
exactly as if it had never stopped: same prompts, same samples, same updates (tested bit for bit on CPU).
It is written to `checkpoint.tmp` and renamed, so a kill during the write leaves the previous one intact.

`metrics.jsonl` gets one JSON line per step and per evaluation; TensorBoard events too when installed.
"""
import json
import shutil
from pathlib import Path

import torch

from nano_forkrl.run.config import to_dict


def save_checkpoint(out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg):
    """A plain HF folder plus trainer_state.pt, written to a temp folder and renamed (a kill never corrupts it)."""
    final, tmp = Path(out_dir) / "checkpoint", Path(out_dir) / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save({"step": step, "cursor": cursor, "optimizer": optimizer.state_dict(), "config": to_dict(cfg),
                "torch_rng": torch.get_rng_state(), "sampler_rng": sampler.rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               tmp / "trainer_state.pt")
    old = Path(out_dir) / "checkpoint.old"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(out_dir):
    """The folder to resume from: checkpoint/, or checkpoint.old/ when a kill fell between the two renames of
    save_checkpoint; None when neither holds a trainer state."""
    for name in ("checkpoint", "checkpoint.old"):
        if (Path(out_dir) / name / "trainer_state.pt").exists():
            return Path(out_dir) / name
    return None


class Logger:
    """metrics.jsonl always; TensorBoard when installed. On resume, lines logged after the checkpoint are dropped."""

    def __init__(self, out_dir, start_step):
        self.path = Path(out_dir) / "metrics.jsonl"
        lines = self.path.read_text().splitlines() if self.path.exists() and start_step > 0 else []
        self.path.write_text("".join(l + "\n" for l in lines if json.loads(l)["step"] <= start_step))
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(Path(out_dir) / "tb"))
        except Exception:  # tensorboard not installed: JSONL only
            self.tb = None

    def log(self, record):
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb:
            flat = {**{k: v for k, v in record.items() if isinstance(v, (int, float))},
                    **{f"time/{k}": v for k, v in record.get("time", {}).items()}}
            for k, v in flat.items():
                self.tb.add_scalar(k, v, record["step"])




def restore_state(folder, optimizer, sampler):
    """Load optimizer and RNG states from `folder/trainer_state.pt`; returns (step, cursor)."""
    state = torch.load(Path(folder) / "trainer_state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    sampler.set_rng_state(state["sampler_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["cursor"]
