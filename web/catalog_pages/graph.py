"""The small relation graph of the entity page, laid out on the server for an inline SVG (no JS library):
the entities relating to this one on the left, this entity in the middle, the entities it relates to on
the right; every node a link, every edge labelled with its relation."""
from dataclasses import dataclass, field

NODE_WIDTH, NODE_HEIGHT, ROW_GAP, MARGIN = 210, 44, 14, 12
COLUMN_X = (MARGIN, 345, 678)  # left, middle, right
WIDTH = COLUMN_X[2] + NODE_WIDTH + MARGIN
MAX_PER_SIDE = 8
LABEL_CHARS = 26


@dataclass
class GraphNode:
    label: str
    blueprint: str
    url: str = ""
    relation: str = ""  # the relation of the edge between this node and the middle one


@dataclass
class Graph:
    width: int
    height: int
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)
    description: str = ""


def _short(text):
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def _column(items, more, x, height):
    """Nodes of one side, centred vertically; a last '+N more' node (no link) when there are more."""
    shown = list(items[:MAX_PER_SIDE])
    more += max(0, len(items) - MAX_PER_SIDE)
    if more:
        shown.append(GraphNode(label=f"+{more} more", blueprint=""))
    total = len(shown) * NODE_HEIGHT + max(0, len(shown) - 1) * ROW_GAP
    top = (height - total) // 2
    laid = []
    for i, node in enumerate(shown):
        y = top + i * (NODE_HEIGHT + ROW_GAP)
        laid.append({"x": x, "y": y, "width": NODE_WIDTH, "height": NODE_HEIGHT, "label": _short(node.label),
                     "full_label": node.label, "blueprint": node.blueprint, "url": node.url, "relation": node.relation,
                     "text_x": x + 10, "label_y": y + 19, "blueprint_y": y + 35, "more": not node.blueprint})
    return laid


def relation_graph(center, sources, targets, *, more_sources=0, more_targets=0):
    """`center`, `sources` (entities relating to it) and `targets` (what it relates to) as GraphNodes →
    a Graph with absolute coordinates. `more_*`: how many were left out before these lists."""
    rows = max(1, min(MAX_PER_SIDE + 1, max(len(sources) + bool(more_sources), len(targets) + bool(more_targets))))
    height = int(rows * NODE_HEIGHT + (rows - 1) * ROW_GAP + 2 * MARGIN)
    middle = _column([center], 0, COLUMN_X[1], height)[0]
    middle["center"] = True
    left = _column(sources, more_sources, COLUMN_X[0], height)
    right = _column(targets, more_targets, COLUMN_X[2], height)
    mid_y = middle["y"] + NODE_HEIGHT // 2
    edges = []
    for node in left:
        start = (node["x"] + NODE_WIDTH, node["y"] + NODE_HEIGHT // 2)
        end = (middle["x"], mid_y)
        edges.append(_edge(start, end, node["relation"], near_start=True))
    for node in right:
        start = (middle["x"] + NODE_WIDTH, mid_y)
        end = (node["x"], node["y"] + NODE_HEIGHT // 2)
        edges.append(_edge(start, end, node["relation"], near_start=False))
    description = (f"{center.label} is related to by {len(sources) + more_sources} "
                   f"entit{'y' if len(sources) + more_sources == 1 else 'ies'} and relates to "
                   f"{len(targets) + more_targets}.")
    return Graph(width=WIDTH, height=height, nodes=[*left, middle, *right], edges=edges, description=description)


def _edge(start, end, relation, *, near_start):
    # The label sits next to the outer node, where edges fan out and labels do not overlap each other.
    if near_start:
        label_x, label_y, anchor = start[0] + 6, start[1] - 7, "start"
    else:
        label_x, label_y, anchor = end[0] - 6, end[1] - 7, "end"
    return {"x1": start[0], "y1": start[1], "x2": end[0], "y2": end[1], "label": _short(relation) if relation else "",
            "label_x": label_x, "label_y": label_y, "anchor": anchor}
