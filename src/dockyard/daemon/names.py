"""Container names: validation and Docker-style random ``adjective_surname`` names."""

from __future__ import annotations

import random
import re

from dockyard.errors import InvalidArgument

VALID = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_LEFT = ["admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant", "happy",
         "jolly", "keen", "lucid", "modest", "nifty", "optimistic", "quirky", "relaxed", "serene",
         "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous", "bold", "calm"]
_RIGHT = ["turing", "hopper", "lovelace", "curie", "noether", "ritchie", "thompson", "torvalds",
          "knuth", "dijkstra", "hamilton", "shannon", "babbage", "liskov", "kay", "perlman",
          "goldberg", "allen", "backus", "mccarthy", "wozniak", "pike", "cerf", "kahn", "lamport"]


def validate(name: str) -> str:
    if not VALID.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def generate(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
        if name not in taken:
            return name
    while True:
        name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}{random.randint(0, 9999)}"
        if name not in taken:
            return name
