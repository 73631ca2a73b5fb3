"""Selections: layer ranges, filter and class specs, stable samples, shards and seeds."""

import pytest

from generator.architecture import TOTAL_FILTERS
from generator.cost import shard_units
from generator.errors import UserError
from generator.units import Unit, parse_classes, parse_indices, parse_layers, parse_shard, sample_indices, select_units


def test_layer_ranges_blocks_and_lists():
    assert len(parse_layers("block1..block5")) == 13
    assert parse_layers("block3..block4") == ["block3_conv1", "block3_conv2", "block3_conv3",
                                             "block4_conv1", "block4_conv2", "block4_conv3"]
    assert parse_layers("block2_conv1..block3_conv1") == ["block2_conv1", "block2_conv2", "block3_conv1"]
    assert parse_layers("predictions, block4_conv2,block1_conv1") == ["block1_conv1", "block4_conv2", "predictions"]


def test_filter_and_class_specs():
    assert parse_indices("0:4,10", 64) == [0, 1, 2, 3, 10]
    assert parse_indices("60:", 64) == [60, 61, 62, 63]
    assert parse_classes("water ouzel, n01440764, 3, 5:7") == [0, 3, 5, 6, 20]
    with pytest.raises(UserError, match="empty filter range"):
        parse_indices("5:5", 64)


def test_the_whole_atlas_and_its_shards_partition_it():
    everything = select_units("block1..block5")
    assert len(everything) == TOTAL_FILTERS == 4224
    shards = [shard_units(everything, *parse_shard(f"{i}/3")) for i in range(3)]
    assert sorted(sum(shards, []), key=everything.index) == everything
    assert len(select_units(classes="all")) == 1000


def test_a_smaller_sample_is_a_prefix_of_a_larger_one():
    small, large = sample_indices("block4_conv2", 512, 3), sample_indices("block4_conv2", 512, 8)
    assert set(small) <= set(large) and len(small) == 3 and len(large) == 8
    assert small != sample_indices("block4_conv3", 512, 3)


def test_seeds_are_stable_and_distinct():
    seeds = {Unit(layer, index).seed() for layer in ("block1_conv1", "block5_conv3") for index in range(64)}
    assert len(seeds) == 128
    assert Unit("block4_conv2", 17).seed() == Unit("block4_conv2", 17).seed() != Unit("block4_conv2", 17).seed(1)
