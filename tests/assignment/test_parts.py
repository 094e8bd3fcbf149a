"""Tests for nano_forkrl/assignment/parts.py: the registry matches the regions and the tests."""
import re
from pathlib import Path

import nano_forkrl.cs336 as cs336
from nano_forkrl.assignment.markers import scan
from nano_forkrl.assignment.parts import PARTS

ROOT = Path(__file__).resolve().parents[2]


def test_every_part_has_regions_and_every_region_a_part():
    named = {part for spans in scan(ROOT).values() for part, *_ in spans}
    assert named == set(PARTS)


def test_tutorials_exist_and_points_add_up():
    for part in PARTS.values():
        assert (ROOT / "tutorials" / part.tutorial).is_file(), part
        assert re.fullmatch(r"\d+(\.\d+)?(-\d+(\.\d+)?)?", part.hours), part
    assert sum(p.points for p in PARTS.values()) == 100


def test_node_ids_name_existing_tests_once():
    seen = set()
    for part in PARTS.values():
        assert part.tests, part.name
        for node in part.tests:
            file, _, name = node.partition("::")
            assert (ROOT / file).is_file(), node
            if name:
                assert re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M), node
            assert node not in seen, f"{node} is graded twice"
            seen.add(node)


def test_needs_are_other_parts_and_cs336_names_exist():
    for part in PARTS.values():
        assert set(part.needs) <= set(PARTS) - {part.name}, part
        for name in part.cs336:
            if name.isidentifier():
                assert name in cs336.__all__, name
