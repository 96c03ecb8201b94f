"""Where Model Garden's checkpoint puts each layer: the order of a Keras functional model's layers, emulated.

A TF2 checkpoint names a functional model's layers by position, `layer_with_weights-N`: N counts the layers that
hold weights in the order of `model.layers`. That order is not construction order. Keras (tf_keras 2.x,
`functional._map_graph_network`) walks the graph depth-first from the outputs (in `tf.nest.flatten` order, i.e.
sorted keys of the output dict), numbering each layer when it is first reached, gives every layer its depth (the
longest path from it to an output, in layers), then sorts by depth, deepest first, ties by that first-reached
number. Layers that reach no output are not in the model.

`ModelGraph` records a graph as Model Garden's builder makes it (every Keras layer and TF-op layer, with its
inputs in call order) and `weighted_order` returns the weighted layers in checkpoint order.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KerasLayer:
    """One layer of the functional model: `kind` (conv, depthwise_conv, batch_norm, bottleneck, residual, mbconv, or
    an unweighted op such as relu, add_n, max_pool), its input layers' indices in call order, and for a weighted
    layer `target`, the name of our module it becomes."""

    kind: str
    inputs: tuple[int, ...]
    target: str | None = None

    @property
    def weighted(self) -> bool:
        return self.target is not None


@dataclass
class ModelGraph:
    """A functional model under construction: `add` a layer, get its index (the tensor it outputs)."""

    layers: list[KerasLayer] = field(default_factory=list)

    def add(self, kind: str, *inputs: int, target: str | None = None) -> int:
        """Adds a layer fed by `inputs` (layer indices, in call order); returns its index."""
        self.layers.append(KerasLayer(kind, tuple(inputs), target))
        return len(self.layers) - 1

    def nearest_upsampling(self, x: int) -> int:
        """Model Garden's `spatial_transform_ops.nearest_upsampling` as TF-op layers: shape -> h, w -> reshape(data,
        [bs, h, 1, w, 1, c]) -> tile -> reshape(tiled, [bs, h * s, w * s, c])."""
        shape = self.add("shape", x)
        h, w = self.add("getitem", shape), self.add("getitem", shape)
        tiled = self.add("tile", self.add("reshape", x, h, w))
        return self.add("reshape", tiled, self.add("multiply", h), self.add("multiply", w))


def keras_layer_order(graph: ModelGraph, outputs: list[int]) -> list[int]:
    """Returns the indices of the layers that reach `outputs`, in Keras's `model.layers` order (module docstring)."""
    first_reached: dict[int, int] = {}
    finished: set[int] = set()
    post_order: list[int] = []
    for output in outputs:
        if output in finished:
            continue
        first_reached.setdefault(output, len(first_reached))
        stack = [(output, iter(graph.layers[output].inputs))]
        while stack:  # the recursion of Keras's _build_map_helper, without Python's recursion limit
            layer, pending = stack[-1]
            for source in pending:
                if source not in finished:
                    first_reached.setdefault(source, len(first_reached))
                    stack.append((source, iter(graph.layers[source].inputs)))
                    break
            else:
                stack.pop()
                if layer not in finished:
                    finished.add(layer)
                    post_order.append(layer)
    depth: dict[int, int] = {}
    for layer in reversed(post_order):  # each layer before the layers it reads
        here = depth.setdefault(layer, 0)
        for source in graph.layers[layer].inputs:
            depth[source] = max(depth.get(source, 0), here + 1)
    return sorted(post_order, key=lambda layer: (-depth[layer], first_reached[layer]))


def weighted_order(graph: ModelGraph, outputs: list[int]) -> list[KerasLayer]:
    """Returns the weighted layers in checkpoint order: element N is `layer_with_weights-N`."""
    return [graph.layers[index] for index in keras_layer_order(graph, outputs) if graph.layers[index].weighted]
