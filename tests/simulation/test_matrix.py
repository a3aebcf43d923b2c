"""The variant matrix: which variant sets ``--api-variant`` means, and the table of outcomes (green only when clean)."""

from __future__ import annotations

from collections import Counter

import pytest

from twelvelabs_emulator.variants import Variant
from videobatch_tools.simulate.matrix import cases, format_table, tabulate, variant_sets
from videobatch_tools.simulate.runner import SimulationConfig, SimulationResult


def test_all_means_each_variant_alone_plus_the_documented_default() -> None:
    sets = variant_sets(["all"])
    assert sets[0] == ()
    assert sorted(sets[1:]) == sorted((variant.value,) for variant in Variant)


def test_named_variants_combine_in_one_run_and_unknown_ones_are_refused() -> None:
    assert variant_sets([]) == [()]
    assert variant_sets(["results_noise,start_offset", "results_noise"]) == [("results_noise", "start_offset")]
    with pytest.raises(ValueError, match="no_such_variant"):
        variant_sets(["no_such_variant"])


def test_cases_cover_every_variant_profile_and_seed() -> None:
    configs = cases(SimulationConfig(), variants=[(), ("results_noise",)], profiles=["none", "all"], seeds=[1, 2])
    assert len(configs) == 8
    assert {(c.api_variants, c.faults, c.seed) for c in configs} == {
        (v, p, s) for v in [(), ("results_noise",)] for p in ("none", "all") for s in (1, 2)
    }


def _result(variant: tuple[str, ...], profile: str, seed: int, **counts: int) -> SimulationResult:
    config = SimulationConfig(seed=seed, faults=profile, api_variants=variant)
    return SimulationResult(config, uploads=10, counts=Counter(counts), faults=Counter(), steps=1, wall_seconds=1.0,
                            virtual_seconds=1.0)  # fmt: skip


def test_a_cell_sums_its_seeds_and_is_green_only_when_settled_without_violations() -> None:
    cells = tabulate(
        [
            _result((), "all", 1, done=9, failed=1),
            _result((), "all", 2, done=10),
            _result(("results_noise",), "all", 1, done=8, pending=2),
            _result(("start_offset",), "all", 1, done=10, double_submitted=1),
        ]
    )
    by_variant = {cell.variant: cell for cell in cells}
    assert (by_variant["default"].seeds, by_variant["default"].done, by_variant["default"].failed) == (2, 19, 1)
    assert by_variant["default"].green
    assert not by_variant["results_noise"].green  # pending
    assert not by_variant["start_offset"].green  # a violation
    table = format_table(cells)
    assert table.splitlines()[0].split() == [
        "variant",
        "profile",
        "seeds",
        "done",
        "failed",
        "pending",
        "violations",
        "ok",
    ]
    assert table.splitlines()[-1].split()[-2:] == ["1", "NO"]
