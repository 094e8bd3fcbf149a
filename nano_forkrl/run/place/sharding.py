"""The sharded policy of a torchrun run (FSDP2): how it is split, and how it is seen whole again.

- `shard`: one FSDP group per decoder layer, one for [input embedding, output head] (the tied weight
  of Qwen3-0.6B..4B must live in one group), one for the body, which is the root: entropy.py runs
  the body, then the head chunk by chunk on its own. CUDA: bf16 compute, float32 master weights and
  float32 gradient reduction (MixedPrecisionPolicy); CPU (gloo): float32 throughout. Gradients are
  SUMMED over the ranks (divide factor 1): policy_step normalises by the global token count itself.
  No CPU offload.
- `decode_copy`: the unsharded module TorchSampler decodes with (a sharded module would need an
  all-gather per layer and per decoded token, in lockstep on every rank): bf16 on CUDA, float32 on
  CPU, made before sharding.
- `FullView`: the sharded module's weights one full tensor at a time (an all-gather each), for an
  engine's `load_weights` after each update: the extra memory is the largest float32 tensor (the
  embedding), never a second full float32 model.
- `full_state`, `Whole`, `OptimizerState`: the gathered full weights and optimizer state on rank 0's
  CPU, in the shapes run/persist/checkpoint.py reads and writes (one plain HF folder, one
  trainer_state.pt).
"""
import copy

import torch
from torch.distributed.tensor import DTensor


def shard(model):
    """Apply FSDP2 in place (groups and precision: module docstring). Returns the model."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    cuda = next(model.parameters()).device.type == "cuda"
    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if cuda else None,
                                  reduce_dtype=torch.float32)
    body = model.get_decoder()
    ends = [model.get_input_embeddings(), model.get_output_embeddings()]
    for group in (*body.layers, ends, body):
        fully_shard(group, mp_policy=policy)
    for module in model.modules():
        if hasattr(module, "set_gradient_divide_factor"):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)  # gloo has no pre-multiplied sum
    return model


def decode_copy(model):
    """An unsharded copy for TorchSampler: bf16 on CUDA (buffers, hence RoPE, stay float32), float32
    on CPU. Each parameter is cast on its own, so no second float32 model exists even for a
    moment."""
    dtype = torch.bfloat16 if next(model.parameters()).device.type == "cuda" else torch.float32
    memo = {id(p): torch.nn.Parameter(p.detach().to(dtype, copy=True), requires_grad=False)
            for p in model.parameters()}  # a tied weight maps to one copy
    return copy.deepcopy(model, memo).eval()


def full(tensor):
    """The whole tensor of a DTensor shard (a collective), a plain tensor as it is."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


class FullView:
    """The sharded policy seen whole, one tensor at a time, for `Sampler.load_weights` (TorchSampler
    reads `parameters()`, vLLM `state_dict().items()`). Every rank must read it, in the same
    order."""

    def __init__(self, model):
        self.model, self.config = model, model.config
        self.generation_config = getattr(model, "generation_config", None)

    def parameters(self):
        return (full(p.detach()) for p in self.model.parameters())

    def state_dict(self):
        return _Pairs((name, full(t)) for name, t in self.model.state_dict().items())


class _Pairs:
    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs


def full_state(model, optimizer):
    """(full weights, full optimizer state dict) on rank 0's CPU, empty elsewhere; every rank calls
    it."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer,
                                                                                  options=options)


class Whole:
    """What save_checkpoint reads of the model: the gathered full weights, written by HF's
    save_pretrained."""

    def __init__(self, model, weights):
        self.model, self.weights = model, weights

    def named_parameters(self):
        return self.weights.items()

    def save_pretrained(self, path):
        self.model.save_pretrained(path, state_dict=self.weights)


class OptimizerState:
    """The optimizer as run/persist/checkpoint.py sees it: the gathered full state, loaded back into
    the shards."""

    def __init__(self, model, optimizer, state=None):
        self.model, self.optimizer, self.state = model, optimizer, state

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        from torch.distributed.checkpoint.state_dict import (StateDictOptions,
                                                             set_optimizer_state_dict)

        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.model, self.optimizer, state, options=options)
