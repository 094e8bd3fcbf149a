"""One process: the loop's place without torchrun, with the same methods as `distributed.Ranks`.

The loop calls its place for everything that differs between one and N processes (scoring, sharing
rows, gathering, evaluating, saving, restoring, seeding the sampler); here each is the plain
single-process call, so the loop has one code path and no "am I distributed?" branch.
"""
import contextlib

import torch

from nano_forkrl.entropy import score_batch
from nano_forkrl.run.persist.checkpoint import restore_state, save_checkpoint
from nano_forkrl.run.steps.evaluation import evaluate


class OneProcess:
    """Rank 0 of a world of 1: shares are everything, gathers and sums return their input."""

    rank, world, main = 0, 1, True
    device = torch.device("cpu")  # of the (absent) collectives: what run/safety/stop.py sums on

    def span(self, n):
        return slice(0, n)

    def share(self, items):
        return items

    def gather(self, obj):
        return [obj]

    def sum(self, tensor):
        """The sum over one process: the tensor itself (UpdateSettings.reduce)."""
        return tensor

    def barrier(self):
        pass

    @contextlib.contextmanager
    def main_first(self):
        yield

    def seed(self, seed):
        """The sampler's seed: the run's own."""
        return seed

    def policy(self, model, sampler, ref_model=None):
        """(training module, what the rollout engine is built from, reference module or None):
        the policy itself for both."""
        return model, model, ref_model

    def full_view(self, model):
        return model

    def score_batch(self, model, batch, **kwargs):
        """entropy.score_batch of a RolloutBatch (tasks/rollout_batch.py): (log-probs, entropies)
        [B, T]."""
        return score_batch(model, batch.inputs(), **kwargs)

    def evaluate(self, sampler, problems, **kwargs):
        return evaluate(sampler, problems, **kwargs)

    def save(self, out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg, data=None):
        save_checkpoint(out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg, data)

    def restore(self, folder, optimizer, sampler):
        """run/persist/checkpoint.restore_state: (step, cursor)."""
        return restore_state(folder, optimizer, sampler)
