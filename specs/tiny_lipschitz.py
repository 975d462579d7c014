"""Example template spec: near the class-2 centre, no output moves by more than 40 times the
L-infinity distance between two inputs.  ``verify check MODEL specs/tiny_lipschitz.py``."""

from verify.spec import linf_ball, lipschitz

PROPERTY = lipschitz(linf_ball([0.5, 0.8, 0.2, 0.4], eps=0.02), L=40.0)
