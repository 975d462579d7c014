"""Module composition: prove a case from per-module claims chained by assume-guarantee."""

from verify.compose.compose import ComposeOptions, ModularResult, modular_proof, partition, prove_modular
from verify.compose.policy import BACKENDS, Policy, make_backend

__all__ = ["BACKENDS", "ComposeOptions", "ModularResult", "Policy", "make_backend", "modular_proof", "partition",
           "prove_modular"]
