"""Weight packing for the C kernels: constant matrices are re-laid out at compile time into
panels of PANEL columns, so the generated matrix kernel streams contiguous memory while its
accumulators stay in registers (see templates/c/kernels.c.j2).

A matrix used as Y = A * B (B is [K][N]) is stored as [ceil(N/PANEL)][K][PANEL], zero padded.
For Gemm with a constant B that is B itself (a B with a matrix per batch entry: each of them, one
after another); for a recurrence, W and R transposed, per
direction (GRU keeps R's z/r rows apart from its h rows, which multiply r . h). The packed
values are attached to the node (`packed`); weights known only at run time are packed into
scratch by the generated code with the same layout. The NumPy emitter ignores all of this.
"""
import numpy as np

from ..dims import ceil_div
from ..ir import Value
from ..loops import PANEL



def panels(b: np.ndarray) -> np.ndarray:
    """[K][N] → [ceil(N/PANEL)][K][PANEL], zero padded."""
    k, n = b.shape
    padded = np.zeros((k, -(-n // PANEL) * PANEL), dtype=b.dtype)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, -1, PANEL).transpose(1, 0, 2))


def panel_size(k, n) -> int:
    return ceil_div(n, PANEL) * PANEL * k  # n may be symbolic (a Conv's output positions)


def run(graph) -> bool:
    changed = False
    for node in graph.nodes:
        if node.op_type == "Gemm":
            a, b = node.attrs, node.inputs[1]
            matrices = _matrices(a, b)
            if matrices is not None:  # constant: each batch entry's B packed (one B: no batch loop)
                packed = _constant(node, "B", np.concatenate([panels(m) for m in matrices]), b.int8)
            else:
                packed = Value(f"{node.name}_B_packed", b.dtype, (panel_size(a["K"], a["N"]),))
                node.scratch.append(packed)
            a["packed"] = {"B": packed}
            a["panel"] = PANEL
            changed = True
        elif node.op_type == "Recurrent":
            _pack_recurrent(node)
            changed = True
    return changed


def _matrices(a, b):
    """A constant B of a Gemm as the [K][N] matrices its batch entries read, setting
    a["matrix_strides"] (the matrix each batch loop steps over); None when B is given at run time
    or its batch entries are not whole matrices of it."""
    if not b.is_constant:
        return None
    k, n, steps = a["K"], a["N"], a["batch"].strides[1]
    size = k * n
    if not any(steps):
        a["matrix_strides"] = [0] * len(steps)
        return [b.data.T if a["trans_b"] else b.data]
    layout = (1, k) if a["trans_b"] else (n, 1)
    if (a["batch"].offsets[1] != 0 or tuple(a["b_strides"]) != layout or b.data.size % size
            or any(not isinstance(s, int) or s % size for s in steps)):
        return None
    whole = b.data.reshape(-1, n, k).transpose(0, 2, 1) if a["trans_b"] else b.data.reshape(-1, k, n)
    a["matrix_strides"] = [s // size for s in steps]
    return list(whole)


def matrices(node):
    """The matrices of a recurrence, per direction, as (name, rows of W/R, input width)."""
    a = node.attrs
    hidden, gates = a["hidden"], {"RNN": 1, "GRU": 3, "LSTM": 4}[a["cell"]]
    if a["cell"] == "GRU":
        return [("W", 0, gates * hidden, a["input_size"]), ("R_zr", 0, 2 * hidden, hidden),
                ("R_h", 2 * hidden, 3 * hidden, hidden)]
    return [("W", 0, gates * hidden, a["input_size"]), ("R", 0, gates * hidden, hidden)]


def _pack_recurrent(node):
    a = node.attrs
    w, r, b = node.inputs[1], node.inputs[2], node.inputs[3]
    dirs, gh = len(a["directions"]), w.shape[1]
    packed = {}
    for name, start, stop, width in matrices(node):
        source = w if name == "W" else r
        size = panel_size(width, stop - start)
        if source.is_constant:
            data = np.concatenate([panels(source.data[d, start:stop].T) for d in range(dirs)])
            packed[name] = _constant(node, name, data, source.int8)
        else:
            packed[name] = Value(f"{node.name}_{name}_packed", source.dtype, (dirs * size,))
            node.scratch.append(packed[name])
    # the bias of the hoisted input projection: Wb + Rb (GRU: Rb only for z and r)
    if b.is_constant:
        wb, rb = b.data[:, :gh], b.data[:, gh:].copy()
        if a["cell"] == "GRU":
            rb[:, 2 * a["hidden"]:] = 0
        packed["bias"] = _constant(node, "bias", (wb + rb).reshape(-1))
    else:
        packed["bias"] = Value(f"{node.name}_bias", b.dtype, (dirs * gh,))
        node.scratch.append(packed["bias"])
    a["packed"] = packed
    a["panel"] = PANEL


def _constant(node, what, data, int8=False) -> Value:
    return Value(f"{node.name}_{what}_packed", node.inputs[0].dtype, data.shape, data, int8=int8)
