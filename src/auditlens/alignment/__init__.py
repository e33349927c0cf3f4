"""Distributed alignment search (Geiger et al. 2023): the interchange along a learned subspace
(``interchange``), its training (``training``) and the illusion check (``illusion``). The check that
uses them, ``das``, and its results are in ``auditlens.checks.das``. (Not a package named ``das``: it
would shadow the lazily imported ``auditlens.das`` function.)"""

from .illusion import dormant_share, pair_differences, read_part, read_subspace, unread_share
from .interchange import POSITIONS, SubspaceInterchange, check_alignment, interchange
from .training import Budget, Fit, train_directions

__all__ = ["POSITIONS", "Budget", "Fit", "SubspaceInterchange", "check_alignment", "dormant_share", "interchange",
           "pair_differences", "read_part", "read_subspace", "train_directions", "unread_share"]
