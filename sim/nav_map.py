"""A 2-D occupancy grid of a room with round obstacles: feasibility checks and shortest paths.

Obstacles are circles (a box is represented by its bounding circle, a conservative choice). Cells within
``inflate`` m of an obstacle or a wall are blocked, so a robot of that radius can drive through free cells.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import numpy as np


class OccupancyGrid:
    """Square room ``[-half, half]^2`` (m) at ``resolution`` m per cell; ``obstacles`` rows are (x, y, radius)."""

    def __init__(self, half: float, obstacles: np.ndarray, inflate: float, resolution: float = 0.05) -> None:
        self.half, self.res = half, resolution
        n = int(round(2 * half / resolution))
        self.n = n
        centers = -half + (np.arange(n) + 0.5) * resolution
        xs, ys = np.meshgrid(centers, centers, indexing="ij")
        blocked = (np.abs(xs) > half - inflate) | (np.abs(ys) > half - inflate)
        for x, y, r in np.asarray(obstacles, dtype=float).reshape(-1, 3):
            blocked |= (xs - x) ** 2 + (ys - y) ** 2 < (r + inflate) ** 2
        self.blocked = blocked

    def cell(self, xy: np.ndarray) -> tuple[int, int]:
        i = int(np.clip((xy[0] + self.half) / self.res, 0, self.n - 1))
        j = int(np.clip((xy[1] + self.half) / self.res, 0, self.n - 1))
        return i, j

    def center(self, ij: tuple[int, int]) -> np.ndarray:
        return -self.half + (np.array(ij) + 0.5) * self.res

    def free(self, xy: np.ndarray) -> bool:
        return not self.blocked[self.cell(xy)]

    def connected(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True if free cells link ``a`` to ``b`` (8-connected breadth-first search)."""
        start, goal = self.cell(a), self.cell(b)
        if self.blocked[start] or self.blocked[goal]:
            return False
        seen = np.zeros_like(self.blocked)
        seen[start] = True
        queue = deque([start])
        while queue:
            i, j = queue.popleft()
            if (i, j) == goal:
                return True
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    u, v = i + di, j + dj
                    if 0 <= u < self.n and 0 <= v < self.n and not seen[u, v] and not self.blocked[u, v]:
                        seen[u, v] = True
                        queue.append((u, v))
        return False

    def shortest_path(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """A* path of cell centres (k x 2, m) from ``a`` to ``b``, or None when there is none."""
        start, goal = self.cell(a), self.cell(b)
        if self.blocked[start] or self.blocked[goal]:
            return None
        g = {start: 0.0}
        parent: dict[tuple[int, int], tuple[int, int]] = {}
        heap = [(0.0, start)]
        while heap:
            _, cur = heapq.heappop(heap)
            if cur == goal:
                path = [cur]
                while cur in parent:
                    cur = parent[cur]
                    path.append(cur)
                pts = np.array([self.center(c) for c in reversed(path)])
                pts[0], pts[-1] = a[:2], b[:2]
                return pts
            i, j = cur
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if di == dj == 0:
                        continue
                    u, v = i + di, j + dj
                    if not (0 <= u < self.n and 0 <= v < self.n) or self.blocked[u, v]:
                        continue
                    cost = g[cur] + math.hypot(di, dj)
                    if cost < g.get((u, v), math.inf):
                        g[(u, v)] = cost
                        parent[(u, v)] = cur
                        heapq.heappush(heap, (cost + math.hypot(u - goal[0], v - goal[1]), (u, v)))
        return None
