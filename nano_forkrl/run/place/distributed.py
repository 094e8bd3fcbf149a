"""One node's GPUs: `torchrun --nproc_per_node N -m nano_forkrl.train` runs the loop on N ranks.

Without torchrun `setup` returns run/place/single.py's `OneProcess` (the plain single-process
calls): the loop runs one code path either way. Under torchrun, a `Ranks`:
- Rollouts: rank r samples and scores a contiguous share of the step's prompts (whole groups) with
  its own engine and RNG stream; the groups are all-gathered in prompt order, so every rank holds
  the whole batch (token ids are small) and dynamic sampling decides on it as one process would.
  Only when it cannot fill the batch are the kept groups cut so that their rows split evenly (every
  rank runs as many forward passes).
- Old log-probs and entropies: each rank scores B/N rows; the [B, T] results are all-gathered (8
  bytes per token of the global batch: 36 MB for 64 x 16 rows of 4,400 tokens), so
  masking.TokenSelection ranks the entropy of every response token of the GLOBAL batch: the
  single-process mask, identical on every rank.
- Update: each rank trains a contiguous share of every mini-batch; policy_step sums its normalisers
  (trained tokens, sequences) and statistics over the ranks (UpdateSettings.reduce = `Ranks.sum`)
  and FSDP sums the gradients (run/place/sharding.py), so loss and gradient are one process's on the
  same batch. `--mask-source current` ranks within each rank's micro-batches of micro_batch_size
  sequences, as one process does in its.
- Weights (run/place/sharding.py): FSDP2 for training, a local decode copy (or vLLM) for rollouts,
  refreshed one tensor at a time after each update.
- Checkpoints: rank 0 writes the one HF folder and trainer_state.pt (run/persist/checkpoint.py) from
  the gathered full weights and optimizer state, with every rank's RNG states; a resume needs the
  same number of processes.
- Evaluation: contiguous shares of the held-out problems, the correct counts gathered.
Logs, prints and the progress bar: rank 0 only.
"""
import atexit
import contextlib
import os
import sys

import torch
import torch.distributed as tdist

from nano_forkrl.run.place import sharding
from nano_forkrl.run.persist.checkpoint import processes_mismatch, restore_state, save_checkpoint
from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.utils.errors import RunError
from nano_forkrl.utils.seeds import derive_seed


def setup(cfg):
    """This process's place: a `Ranks` under torchrun (process group up, CUDA device = LOCAL_RANK),
    else a `OneProcess`."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return OneProcess()
    cuda = cfg.device != "cpu" and torch.cuda.is_available()
    if cuda and cfg.device not in ("auto", "cuda"):
        raise RunError(f"--device {cfg.device}: under torchrun rank r takes cuda:LOCAL_RANK; "
                       "use auto")
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    tdist.init_process_group("nccl" if cuda else "gloo")
    atexit.register(_leave)
    ranks = Ranks()
    G = cfg.group_size
    for what, n in (("--prompts-per-step x --group-size", cfg.prompts_per_step * G),
                    ("--mini-batch-prompts x --group-size", cfg.mini_batch_prompts * G)):
        if n % ranks.world:
            raise RunError(f"{what} = {n} rows do not split evenly over {ranks.world} processes")
    return ranks


def _leave():
    """At exit: leave the process group, unless a closed vLLM engine already took it down (vLLM's
    shutdown destroys the default group its "external_launcher" backend joined)."""
    if tdist.is_initialized():
        tdist.destroy_process_group()


def quiet_other_ranks():
    """Under torchrun only rank 0 prints (stdout); errors and warnings still reach stderr from every
    rank."""
    if os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")


class Ranks:
    """This process's place in the run (rank, world, main) and every collective the loop uses (the
    same methods as single.OneProcess)."""

    def __init__(self):
        self.rank, self.world = tdist.get_rank(), tdist.get_world_size()
        self.main = self.rank == 0
        # the device of the collectives
        self.device = torch.device("cuda" if tdist.get_backend() == "nccl" else "cpu")

    def span(self, n):
        """This rank's contiguous share of n items."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def share(self, items):
        return items[self.span(len(items))]

    def gather(self, obj):
        """Every rank's `obj` (picklable), in rank order, on every rank."""
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def sum(self, tensor):
        """The sum over the ranks, as a new tensor (UpdateSettings.reduce)."""
        tensor = tensor.clone()
        tdist.all_reduce(tensor)
        return tensor

    def barrier(self):
        tdist.barrier()

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the block first (it builds the tiny cache or downloads), then the others.
        Rank 0 leaves it only after every rank has entered it: what each did before (rundir.plan)
        precedes its writes."""
        if not self.main:
            self.barrier()
        yield
        if self.main:
            self.barrier()

    def seed(self, seed):
        """This rank's sampler seed: its own stream, derived from the run's seed."""
        return derive_seed("rank", seed, self.rank)

    def policy(self, model, sampler, ref_model=None):
        """(the sharded training module, what the rollout engine is built from, the sharded
        reference | None). The engine gets a decode copy made before sharding (TorchSampler) or the
        FullView (vLLM)."""
        from nano_forkrl.engines.factory import resolve

        torch_engine = resolve(sampler, next(model.parameters()).device.type == "cuda") == "torch"
        engine = sharding.decode_copy(model) if torch_engine else None
        self.model = sharding.shard(model)
        ref_model = None if ref_model is None else sharding.shard(ref_model)
        return model, engine if torch_engine else sharding.FullView(model), ref_model

    def full_view(self, model):
        return sharding.FullView(model)

    def score_batch(self, model, batch, **kwargs):
        """entropy.score_batch of the whole RolloutBatch: this rank's rows scored, all ranks' rows
        all-gathered."""
        from nano_forkrl.entropy import score_batch

        mine = score_batch(model, batch[self.span(len(batch))].inputs(), **kwargs)
        return tuple(self._cat(t) for t in mine)

    def _cat(self, tensor):
        tensor = tensor.to(self.device)
        out = [torch.empty_like(tensor) for _ in range(self.world)]
        tdist.all_gather(out, tensor)
        return torch.cat(out).cpu()

    def evaluate(self, sampler, problems, *, k=1, **kwargs):
        """run.steps.evaluation.evaluate on this rank's share of the problems; the result over all
        shares."""
        from nano_forkrl.run.steps.evaluation import evaluate, summarize

        share = problems[self.span(len(problems))]
        part = {"per_problem": [], "mean_length": 0.0}
        if share:
            part = evaluate(sampler, share, k=k, **kwargs)
        parts = self.gather((part["per_problem"], part["mean_length"] * len(share) * k))
        counts = [c for per_problem, _ in parts for c in per_problem]
        return summarize(counts, k, sum(length for _, length in parts))

    def save(self, out_dir, model, tokenizer, optimizer, sampler, step, cursor, cfg, data=None):
        """One checkpoint (run/persist/checkpoint.py), written by rank 0 from the gathered full
        state."""
        weights, optim = sharding.full_state(model, optimizer)
        rngs = self.gather({"sampler": sampler.rng_state(), "torch": torch.get_rng_state()})
        if self.main:
            optimizer_state = sharding.OptimizerState(model, optimizer, optim)
            save_checkpoint(out_dir, sharding.Whole(model, weights), tokenizer, optimizer_state,
                            _Rngs(self, sampler, rngs), step, cursor, cfg, data)
        self.barrier()

    def restore(self, folder, optimizer, sampler):
        """run/checkpoint.restore_state on every rank: the full optimizer state into the shards of
        the module `policy` sharded, this rank's RNG states. Returns (step, cursor)."""
        return restore_state(folder, sharding.OptimizerState(self.model, optimizer),
                             _Rngs(self, sampler), processes=self.world)


class _Rngs:
    """The sampler as run/persist/checkpoint.py sees it: every rank's sampler and torch RNG states,
    restored per rank. (The global CUDA RNG is not per rank: the loop draws nothing from it.)"""

    def __init__(self, ranks, sampler, states=None):
        self.ranks, self.sampler, self.states = ranks, sampler, states

    def rng_state(self):
        return self.states

    def set_rng_state(self, states):
        if not isinstance(states, list) or len(states) != self.ranks.world:
            raise processes_mismatch(len(states) if isinstance(states, list) else 1)
        self.sampler.set_rng_state(states[self.ranks.rank]["sampler"])
        torch.set_rng_state(states[self.ranks.rank]["torch"])
