"""LENS reproduction suite: GRPO vs LENS (Feng et al., arXiv:2510.08696) on TRL, MATH by level."""

__version__ = "0.1.0"
