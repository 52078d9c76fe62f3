"""Shared layer of mlp-cases: data, labelling, model protocol, batched MD, sweeps."""
