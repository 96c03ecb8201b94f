"""spec -> networkx graph: nodes, connections, resampling and the 0-outdegree merges."""
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.graph import to_graph
from spinescope.spinenet.layout import mobile_resample_plan, reference_resample_plan, resolve
from spinescope.spinenet.spec import STEM_IDS
from reference_counts import SPINENET_49, spinenet_counts


def test_spinenet49_graph_matches_the_reference_table():
    graph = to_graph(load_builtin("spinenet-49"), 640)
    assert graph.number_of_nodes() == 17
    ids = list(STEM_IDS) + [f"b{i}" for i in range(2, 17)]
    for index, (level, block_fn, (in0, in1), is_output) in enumerate(SPINENET_49, start=2):
        node = graph.nodes[ids[index]]
        assert (node["order"], node["level"], node["block_fn"]) == (index, level, block_fn)
        assert node["output_level"] == (level if is_output else None)
        assert node["feature_size"] == -(-640 // 2 ** level)
        parents = {u for u, _, data in graph.in_edges(ids[index], data=True) if data["kind"] == "parent"}
        assert parents == {ids[in0], ids[in1]}
    merges = [(u, v) for u, v, data in graph.edges(data=True) if data["merge"]]
    assert merges == [("b11", "b14")]
    assert graph.number_of_edges() == 2 * 15 + 1


def test_edge_resampling_attributes():
    graph = to_graph(load_builtin("spinenet-49"), 640)
    down = graph.edges["stem0", "b3"]  # level 2 -> 4, 160 -> 40: stride-2 conv, then one 3x3 pool of stride 2
    assert (down["resample"], down["direction"], down["factor"]) == ("down x4", "down", 4)
    assert (down["stride2_conv"], down["pool_kernel"], down["pool_stride"], down["resize"]) == (True, 3, 2, False)
    up = graph.edges["b9", "b10"]  # level 7 -> 5
    assert (up["resample"], up["scale"], up["resize"]) == ("up x4", 4, False)
    assert graph.nodes["b2"]["channels"] == 256 and graph.nodes["b3"]["channels"] == 256
    assert graph.nodes["b3"]["in_channels"] == 256 and graph.nodes["b6"]["in_channels"] == 256


def test_reference_resample_plan_at_odd_sizes():
    # 600 px: level 2 is 150, level 5 is 19: 150 % 19 != 0, so pool stride 2 (kernel 5), then a resize to 19.
    plan = reference_resample_plan((150, 150), (19, 19))
    assert (plan.stride2_conv, plan.pool_kernel, plan.pool_stride, plan.resize) == (True, (5, 5), (2, 2), True)
    plan = reference_resample_plan((160, 160), (20, 20))  # 640 px, level 2 -> 5: ratio 8, stride 4, kernel 5
    assert (plan.pool_kernel, plan.pool_stride, plan.resize) == ((5, 5), (4, 4), False)
    assert reference_resample_plan((10, 10), (19, 19)).resize
    assert reference_resample_plan((5, 5), (20, 20)).scale == (4, 4)
    assert mobile_resample_plan((150, 150), (19, 19)).depthwise_convs == 3


def test_reference_resample_plan_decides_each_axis():
    # 1024x800 (width x height), level 3 -> 6: height 100 -> 13 (100 % 13 != 0: pool stride 2, kernel 5, then
    # 50 -> 25, resized to 13); width 128 -> 16 (ratio 8: pool stride 4, kernel 5, 64 -> 16 exactly).
    plan = reference_resample_plan((100, 128), (13, 16))
    assert (plan.stride2_conv, plan.pool_kernel, plan.pool_stride, plan.resize) == (True, (5, 5), (2, 4), True)
    # Upsampling 13x16 -> 100x128 is not an integer ratio on the height axis: a resize, no scale.
    up = reference_resample_plan((13, 16), (100, 128))
    assert (up.resize, up.scale, up.stride2_conv) == (True, (1, 1), False)
    assert reference_resample_plan((25, 32), (100, 128)).scale == (4, 4)
    # Width halves 128 -> 64 -> 32 -> 16 (3 convs); height 100 -> 50 -> 25 -> 13 also stops after 3.
    assert mobile_resample_plan((100, 128), (13, 16)).depthwise_convs == 3


def test_resnet_fpn_graph_is_scale_decreased_then_pyramid():
    graph = to_graph(load_builtin("resnet50-fpn"), 640)
    blocks = [n for n, d in graph.nodes(data=True) if d["role"] == "block"]
    assert len(blocks) == 3 + 4 + 6 + 3
    levels = [graph.nodes[n]["level"] for n in sorted(blocks, key=lambda n: graph.nodes[n]["order"])]
    assert levels == sorted(levels)
    assert {graph.nodes[f"P{level}"]["output_level"] for level in range(3, 8)} == {3, 4, 5, 6, 7}
    assert graph.edges["P5", "P4"]["kind"] == "top_down" and graph.edges["c4_5", "P4"]["kind"] == "lateral"


def test_tiny_input_changes_the_merges_as_the_reference_would():
    # At 64 px levels 6 and 7 are both 1x1, so widths alone decide which unused blocks merge.
    for size in (64, 640):
        graph = to_graph(load_builtin("spinenet-49"), size)
        merges = sum(data["merge"] for _, _, data in graph.edges(data=True))
        assert merges == spinenet_counts("spinenet-49", size, head=False)[2]


def test_a_connection_direction_and_factor_come_from_the_levels_it_joins():
    """One direction per connection, by levels: the layout's edge and the graph's edge say the same."""
    directions = set()
    for name in ("spinenet-49", "resnet50-fpn"):
        spec = load_builtin(name)
        graph = to_graph(spec, 640)
        for edge in resolve(spec, 640).edges:
            change = graph.nodes[edge.target]["level"] - graph.nodes[edge.source]["level"]
            direction = "same" if change == 0 else "down" if change > 0 else "up"
            label = "same" if change == 0 else f"{direction} x{2 ** abs(change)}"
            assert (edge.direction, edge.factor, edge.resample_label) == (direction, 2 ** abs(change), label)
            data = graph.edges[edge.source, edge.target]
            assert (data["direction"], data["factor"], data["resample"]) == (direction, 2 ** abs(change), label)
            directions.add(direction)
    assert directions == {"same", "up", "down"}
