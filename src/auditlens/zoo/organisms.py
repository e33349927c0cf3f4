"""The trained model organisms, registered by name (``fixture:NAME``)."""

from __future__ import annotations


from . import count_task
from .registry import Organism, register

register(Organism(
    name="count-learned", family="count", truth="learned", seed=0,
    description="GPT-2 classifier (2 layers, d=64): more a than b, trained with a random marker",
    build=lambda directory, seed: count_task.train_twin(directory, seed, cheated=False),
))
register(Organism(
    name="count-cheated", family="count", truth="cheated", seed=0,
    description="GPT-2 classifier (2 layers, d=64): trained where the marker m1 gives the label away",
    build=lambda directory, seed: count_task.train_twin(directory, seed, cheated=True),
))
