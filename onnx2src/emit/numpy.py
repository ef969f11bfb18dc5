"""NumPy emitter: lowered IR → one Python module that imports only numpy.

Python here only names things and renders values; each IR op's code is in
templates/numpy/<op>.py.j2, and the module skeleton in templates/numpy/module.py.j2.
"""
import numpy as np

from ..ops.recurrent import GATES
from ..dims import Dim, is_static, render
from ..reduced_weights import int8_channels
from ..ir import Value
from . import Refs, environment, guarded, tidy
from .literals import py_array, py_number
from .naming import comment, dim_origin, node_comment, pinned, py_namer, py_string, quoted, sentence

# Activations of RNN/LSTM/GRU; {x} is the argument, a plain name.
ACTIVATIONS = {
    "Relu": "np.maximum({x}, 0)", "Tanh": "np.tanh({x})", "Sigmoid": "_sigmoid({x})",
    "Affine": "{alpha} * {x} + {beta}", "LeakyRelu": "np.where({x} >= 0, {x}, {alpha} * {x})",
    "ThresholdedRelu": "np.where({x} > {alpha}, {x}, 0)",
    "ScaledTanh": "{alpha} * np.tanh({beta} * {x})",
    "HardSigmoid": "np.clip({alpha} * {x} + {beta}, 0, 1)",
    "Elu": "np.where({x} >= 0, {x}, {alpha} * np.expm1(np.minimum({x}, 0)))",
    "Softsign": "{x} / (1 + np.abs({x}))", "Softplus": "np.logaddexp(0, {x})",
}
HELPERS = {"DynamicSlice": "dynamic_slice"}  # IR ops whose code calls a helper function
# The activations of a recurrence the per-step loop computes with one tanh over all gates
# (sigmoid(x) = 0.5 + 0.5 tanh(x / 2), the sigmoid gates' weights halved at compile time).
TANH_GATES = {"RNN": ["Tanh"], "GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


class Module:
    def __init__(self, graph, options):
        self.graph, self.name = graph, options.name
        self.int8 = options.weights == "int8"  # float weights of int8 values kept as int8 (reduced_weights)
        self.names = py_namer(self.name)
        self.weights, self.helpers = [], []
        self.env = environment()
        self.states = {}  # id(Recurrent node) -> index of its h in a stream's state (c follows)
        self.derived = []  # weights the emitter computes from the model's (see tanh_weights)

    def value(self, v):
        if v is None:
            return None
        if v.is_constant:  # folding removed every producer of a constant: it is a weight
            key = id(v)
            if key not in self.names.names:
                ident = self.names(key, v.name)
                found = (self.int8 or v.int8) and int8_channels(np.asarray(v.data))
                self.weights.append({"name": ident, "comment": quoted(v.name), "dtype": v.dtype.name,
                                     "shape": self.shape(v.shape),
                                     "literal": f"{py_array(found[0])} * {py_array(found[1])}" if found
                                     else py_array(v.data), "int8": bool(found)})
            return self.names.names[key]
        return self.names(id(v), v.name)

    def dim(self, d):
        return render(d, self.dim_name, "py")

    def dim_name(self, symbol):
        return self.names(("dim", symbol), symbol)

    def shape(self, shape):
        items = [self.dim(d) for d in shape]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"

    def doc_shape(self, shape):
        """A shape for the docstring: min / max / floor as words."""
        return comment("[" + ", ".join(render(d, self.dim_name, "doc") for d in shape) + "]")

    def helper(self, name):
        """Include templates/numpy/helper_<name>.py.j2, which defines _<name>; its name."""
        if name not in self.helpers:
            self.helpers.append(name)
        return "_" + name

    def node(self, node):
        ctx = {"op": node.op_type, "comment": node_comment(node),
               "i": Refs(self.value, node.inputs), "o": Refs(self.value, node.outputs),
               "a": self.attrs(node)}
        out = next((v for v in node.outputs if v is not None), None)  # the first output used
        if out is not None:
            ctx["shape"] = self.shape(out.shape)
            ctx["dtype"] = out.dtype.numpy.name
        extra = getattr(self, "ctx_" + node.op_type, None)
        if extra:
            ctx.update(extra(node))
        if node.op_type in HELPERS:
            self.helper(HELPERS[node.op_type])
        return ctx

    def ctx_Elementwise(self, node):
        """The expression, from templates/numpy/expr/<kind>.py.j2, over the operands."""
        out = node.outputs[0].dtype
        expr = self.env.get_template(f"numpy/expr/{node.attrs['kind']}.py.j2").render(
            x=[self.value(v) for v in node.inputs], a=self.attrs(node), dtype=out.numpy.name,
            src=node.inputs[0].dtype.numpy.name,
            kind=out.numpy.kind, helper=self.helper)
        return {"expr": expr.strip()}

    def attrs(self, node):
        """The node's attributes as templates use them: sizes and floats as Python text."""
        dtype = next(v for v in node.outputs + node.inputs if v is not None).dtype

        def render(x):
            if isinstance(x, Dim):
                return self.dim(x)
            if isinstance(x, float):
                return py_number(x, dtype)
            if isinstance(x, (list, tuple)):
                return [render(v) for v in x]
            return x
        return {k: render(v) for k, v in node.attrs.items()}

    def ctx_Slice(self, node):
        """x[start:end:step, ...]; a negative step runs to the start of the axis and is then cut to
        its extent, since a computed end of -1 would wrap around in Python."""
        parts, extents = [], []
        for (start, end, step), extent in zip(node.attrs["bounds"], node.outputs[0].shape):
            stop = self.dim(end) if step > 0 else ""
            parts.append(f"{self.dim(start)}:{stop}" + (f":{step}" if step != 1 else ""))
            extents.append(f":{self.dim(extent)}" if step < 0 and not (is_static(end) and end < 0) else ":")
        cut = "" if set(extents) == {":"} else "[" + ", ".join(extents) + "]"
        return {"index": ", ".join(parts), "cut": cut}

    def ctx_Gemm(self, node):
        a, b = self.value(node.inputs[0]), self.value(node.inputs[1])
        a = a + ".T" if node.attrs["trans_a"] else a
        b = b + ".T" if node.attrs["trans_b"] else b
        return {"A": a, "B": b, "alpha": py_number(node.attrs["alpha"], node.outputs[0].dtype),
                "beta": py_number(node.attrs["beta"], node.outputs[0].dtype)}

    def ctx_Softmax(self, node):
        return {"view": self.shape((node.attrs["outer"], node.attrs["n"], node.attrs["inner"]))}

    def ctx_Gather(self, node):
        """A constant scalar index becomes plain indexing, e.g. x[:, -1]."""
        indices = node.inputs[1]
        if not (indices.is_constant and indices.data.ndim == 0):
            return {"index": None}
        return {"index": ", ".join([":"] * node.attrs["axis"] + [str(int(indices.data))])}

    def ctx_Fill(self, node):
        return {"value": py_number(node.attrs["value"], node.outputs[0].dtype), "zero": node.attrs["value"] == 0}

    def ctx_Materialize(self, node):
        return {"sizes": "[" + ", ".join(self.dim(d) for d in node.attrs["values"].reshape(-1)) + "]"}

    def ctx_Recurrent(self, node):
        a = node.attrs
        dtype = node.inputs[0].dtype
        self.helper("sigmoid")
        acts = [[ACTIVATIONS[name].format(x="{x}", alpha=py_number(alpha or 0, dtype),
                                          beta=py_number(beta or 0, dtype))
                 for name, alpha, beta in per_dir] for per_dir in a["activations"]]
        names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
        return {"v": dict(zip(names, [self.value(v) for v in node.inputs] + [None] * 8)),
                "state": self.states.get(id(node)),
                "Y": [self.value(v) for v in node.outputs] + [None] * 3,
                "seq": self.dim(a["seq"]), "batch": self.dim(a["batch"]), "H": a["hidden"], "I": a["input_size"],
                "dirs": [{"index": d, "reverse": kind == "reverse", "acts": acts[d]}
                         for d, kind in enumerate(a["directions"])],
                "n_dirs": len(a["directions"]),
                "clip": None if a["clip"] is None else py_number(a["clip"], dtype),
                "gate": [f"{g * a['hidden']}:{(g + 1) * a['hidden']}" for g in range(4)],
                "GH": GATES[a["cell"]] * a["hidden"], "ZR": 2 * a["hidden"], "H3": 3 * a["hidden"],
                "fast": self.tanh_weights(node)}

    def tanh_weights(self, node):
        """For the common recurrence (constant W, R, B; the default activations; no clip,
        lengths, peepholes or input_forget), the weights the fast loop of
        templates/numpy/_recurrent_tanh.py.j2 reads, transposed for `x @ W` and with the sigmoid
        gates' rows halved (exact: a power of two), biases summed; else None."""
        a = node.attrs
        x, w, r, b = node.inputs[:4]
        extra = node.inputs[4:]
        if not (w.is_constant and r.is_constant and b.is_constant) or a["clip"] is not None \
                or a["input_forget"] or (len(extra) > 0 and extra[0] is not None) \
                or (len(extra) > 3 and extra[3] is not None) \
                or any([name for name, _, _ in acts] != TANH_GATES[a["cell"]] for acts in a["activations"]):
            return None
        H, G = a["hidden"], GATES[a["cell"]]
        sigmoid_rows = {"RNN": 0, "GRU": 2 * H, "LSTM": 3 * H}[a["cell"]]
        scale = np.ones(G * H, w.data.dtype)
        scale[:sigmoid_rows] = 0.5
        wb, rb = b.data[:, :G * H], b.data[:, G * H:]
        if a["cell"] == "GRU":  # Rb of the h gate is added after the reset gate, but for lbr=0
            rb = rb.copy()
            if a["linear_before_reset"]:
                rb[:, 2 * H:] = 0
        weights = {"w": np.transpose(w.data * scale[:, None], (0, 2, 1)),
                   "r": np.transpose(r.data * scale[:, None], (0, 2, 1)),
                   "bias": (wb + rb) * scale}
        if a["cell"] == "GRU" and a["linear_before_reset"]:
            weights["rb_h"] = b.data[:, G * H + 2 * H:]
        derived = {k: Value(f"{node.name}_{k}_tanh", w.dtype, v.shape, np.ascontiguousarray(v))
                   for k, v in weights.items()}
        self.derived += derived.values()  # alive while emitting: the namer keys weights by id()
        return {k: self.value(v) for k, v in derived.items()}


def emit(graph, options, source: str):
    """{NAME.py: text} for the compile options (options.py; its name is set); `source` is the
    model file's name."""
    name = options.name
    m = Module(graph, options)
    for s in graph.symbols():
        m.dim_name(s)
    stream = stream_interface(m, graph)
    inputs = [{"name": m.value(v), "onnx": quoted(v.name), "literal": py_string(v.name),
               "dtype": v.dtype.numpy.name, "doc": m.doc_shape(v.shape),
               "spec": "(" + ", ".join(repr(m.dim(d)) if isinstance(d, Dim) else str(d)
                                      for d in v.shape) + ("," if v.rank == 1 else "") + ")"}
              for v in graph.inputs]
    nodes = [m.node(n) for n in graph.nodes]
    outputs = [{"name": m.value(v), "onnx": quoted(v.name), "dtype": v.dtype.numpy.name,
                "doc": m.doc_shape(v.shape)} for v in graph.outputs]
    env = m.env
    body = guarded(graph.nodes, [env.get_template(f"numpy/{n['op'].lower()}.py.j2").render(n=n) for n in nodes],
                   lambda guard: "if " + " and ".join(("" if c.holds else "not ") + m.value(c.value)
                                                      for c in guard) + ":")
    text = env.get_template("numpy/module.py.j2").render(
        name=name, source=comment(source), inputs=inputs, outputs=outputs,
        pinned=pinned(graph), stream=stream, recurrent=any(n.op_type == "Recurrent" for n in graph.nodes),
        weights=m.weights, helpers=m.helpers, body=body,
        dims=[{"name": m.dim_name(s), "key": py_string(m.dim_name(s)), "origin": dim_origin(graph, s)[2:]}
              for s in graph.symbols()])
    return {f"{name}.py": tidy(text)}


def stream_interface(m, graph):
    """Whether the model streams (else why not, as a string literal), its batch dim's key in
    the sizes a call binds, and how many arrays a stream's state holds."""
    plan = getattr(graph, "stream", None)
    reason = "the model was compiled without the streaming analysis" if plan is None else plan.reason
    recurrences = [n for n in graph.nodes if n.op_type == "Recurrent"]
    if reason is None and any(n.attrs.get("guard") for n in recurrences):
        reason = "a recurrence runs only under an If"
    if reason is not None:
        return {"ok": False, "reason": py_string(reason), "doc": sentence(reason)}
    slots = 0
    for node in recurrences:
        m.states[id(node)] = slots
        slots += 2 if node.attrs["cell"] == "LSTM" else 1
    batch = recurrences[0].attrs["batch"]
    return {"ok": True, "slots": slots, "time": m.dim_name(plan.time),
            "batch": py_string(m.dim_name(batch.symbols()[0])) if isinstance(batch, Dim) else None}
