"""C emitter: lowered, memory-planned IR → NAME.h and NAME.c (C99, no malloc, libm only).

Python names every buffer, renders dims and strides as C expressions and builds the index
expressions of each loop nest; the code itself is in templates/c/<op>.c.j2, the files'
skeletons in templates/c/header.h.j2 and templates/c/source.c.j2.
"""
import hashlib
import struct

import numpy as np

from onnx import TensorProto

from ..dims import Dim, is_static, product, render

from ..ir import DTYPES, DType
from ..loops import Nest
from ..ops.recurrent import GATES, STEP_BLOCK
from ..reduced_weights import bf16_bits, bf16_rounded, int8_columns
from ..passes import pack_weights, plan_memory
from . import OnDemand, Refs, environment, guarded, tidy
from .literals import ELEMENTS_PER_WORD, c_initializer, c_number, c_words
from .naming import c_namer, comment, dim_origin, node_comment, pinned, quoted, sentence

# bfloat16, a storage type of the C target only (--weights bf16): a float's upper 16 bits
BF16 = DType("bfloat16", TensorProto.BFLOAT16, np.dtype(np.uint16), "uint16_t")
BY_NAME = {d.name: d for d in DTYPES + [BF16]}

# libm's functions; those a target usually has as one instruction through the compiler's built-in,
# which stays one instruction under -ffreestanding or -fno-builtin (O2S_BUILTIN: prelude.c)
INSTRUCTIONS = ("fabs", "fmin", "fmax")
LIBM = {t: {f: (f"O2S_BUILTIN({f}{s})" if f in INSTRUCTIONS else f + s)
            for f in ("exp", "tanh", "log", "log1p", "fabs", "fmin", "fmax")}
        for t, s in (("float", "f"), ("double", ""))}

# Activations of RNN/LSTM/GRU, written over a variable {x}.
ACTIVATIONS = {
    "Relu": "{x} > 0 ? {x} : 0", "Tanh": "{tanh}({x})", "Sigmoid": "{sigmoid}",
    "Affine": "{alpha} * {x} + {beta}", "LeakyRelu": "{x} >= 0 ? {x} : {alpha} * {x}",
    "ThresholdedRelu": "{x} > {alpha} ? {x} : 0", "ScaledTanh": "{alpha} * {tanh}({beta} * {x})",
    "HardSigmoid": "{fmin}({fmax}({alpha} * {x} + {beta}, 0), {one})",
    "Elu": "{x} >= 0 ? {x} : {alpha} * ({exp}({x}) - {one})",
    "Softsign": "{x} / ({one} + {fabs}({x}))", "Softplus": "{log1p}({exp}({x}))",
}
# C99's fused multiply-add, used where the target has it in hardware (its macro is defined then)
FMA = {"float": {"fn": "fmaf", "macro": "__FP_FAST_FMAF"}, "double": {"fn": "fma", "macro": "__FP_FAST_FMA"}}
ERRORS = [("OK", 0, "success"),
          ("EDIM", 1, "a dimension argument is below 1 or above its bound"),
          ("EINDEX", 2, "a Gather index is out of range"),
          ("ESHAPE", 3, "run-time arguments (Slice bounds, Tile repeats, Range bounds) disagree with the "
                        "shape the model declares"),
          ("EOUTPUT", 4, "output_shape was asked for an output the model does not have"),
          ("EWORKSPACE", 5, "the workspace pointer is NULL or not aligned to NAME_WORKSPACE_ALIGN bytes"),
          ("ESTATE", 6, "step was given a batch other than the one its state was initialized with"),
          ("EWEIGHTS", 7, "the weights pointer is NULL, not aligned to NAME_WORKSPACE_ALIGN bytes, or not the "
                          "NAME.weights made with this NAME.c")]
# the variants of o2s_forward a dispatching x86-64 build has (templates/c/prelude.c, source.c.j2),
# best first: name, gcc/clang target attribute, instruction-set level, the cases that pick it
DISPATCH = [{"name": "avx512", "target": "avx512f", "level": "O2S_ISA_AVX512", "cases": ["O2S_ISA_AVX512"]},
            {"name": "avx2", "target": "avx2,fma", "level": "O2S_ISA_AVX2", "cases": ["O2S_ISA_AVX2"]},
            {"name": "base", "target": None, "level": "O2S_ISA_BUILD", "cases": []}]
# With --weights bf16 an AVX-512 CPU runs the AVX2 variant: gcc -O2 leaves the AVX-512 copy of the
# bf16 kernel's widening loop scalar (its 16 steps of 16-bit loads are fewer than one 512-bit
# vector of them), measured 5.8x slower than the AVX2 copy on an LSTM h512.
DISPATCH_BF16 = [dict(DISPATCH[1], cases=["O2S_ISA_AVX512", "O2S_ISA_AVX2"]), DISPATCH[2]]
WORKSPACE_ALIGN = 8    # bytes: what every malloc gives, and enough for every element type
SECTION_ALIGN = 64     # bytes: each element type's part of a workspace starts on a cache line
WEIGHT_ALIGN = 16      # elements: each weight tensor (but the smaller ones) starts on a multiple of 16 in its type's block


class Source:
    def __init__(self, graph, options):
        self.graph, self.name = graph, options.name
        self.weight_format = options.weights  # how constant float matrices are stored (--weights)
        self.names = c_namer(self.name)
        self.weights, self.pointers = [], []
        self.weight_ends = {}      # dtype name -> elements of its weight block so far
        self.upper = self.name.upper()
        self.kernels = {}          # dtype name -> kernels used ("gemm", "pack")
        self.vmath = False         # whether the float activations of templates/c/vmath.c are used
        self.approximate = options.approximate  # --approx-activations
        self.env = environment()
        self.states = {}           # id(Recurrent node) -> its members in NAME_state (when it streams)

    def use(self, dtype, *kernels):
        self.kernels.setdefault(dtype.name, set()).update(kernels)

    def functions(self, dtype):
        """Names of the math functions for `dtype`: our vectorizable float activations, or libm."""
        if dtype.name != "float":
            return dict(LIBM["double"], one="1.0", sigmoid="1.0 / (1.0 + exp(-{x}))")
        self.vmath = True
        fast = "fast_" if self.approximate else ""
        return dict(LIBM["float"], one="1.0f", exp="o2s_expf", tanh=f"o2s_{fast}tanhf",
                    sigmoid=f"o2s_{fast}sigmoidf({{x}})")

    # -- names ---------------------------------------------------------------------------------
    def dim(self, d) -> str:
        return render(d, self.dim_name)

    def dim_name(self, symbol) -> str:
        return self.names(("dim", symbol), symbol)

    def bound_macro(self, symbol) -> str:
        return f"{self.upper}_MAX_{self.dim_name(symbol).upper()}"

    def bound(self, d) -> str:
        return render(d, self.bound_macro)

    def doc(self, d) -> str:
        """A dim for the documentation: min / max / floor as words, in a comment."""
        return comment(render(d, self.dim_name, "doc"))

    def matrix(self, v, dtype, k, n):
        """(B, kernel) for a matrix product's packed B `v` of k rows and n columns: its panels (see
        pack_weights), one matrix after another when a constant B has several (or a recurrence
        has several directions), which the kernel o2s_gemm_<type> reads, or the variant reading
        the storage --weights asks for: bfloat16 panels of a constant float B of bfloat16 values;
        int8 panels and a scale per column of a constant float B made of int8 values times a
        scale per column (see reduced_weights). B(index) is the kernel's argument text for matrix
        `index` (C text): its panels, or its panels and their column scales."""
        panels = pack_weights.panel_size(1, n)  # columns of one matrix, padded to whole panels
        if (v.is_constant and dtype.name == "float" and self.weight_format == "bf16"
                and np.array_equal(bf16_rounded(v.data), v.data, equal_nan=True)):
            self.use(dtype, "gemm_bf16")
            self.vmath = True  # the variant widens through o2s_vm_u2f
            ident = self.weight(v, BF16, bf16_bits(v.data), " (bfloat16)")
            return matrix_args([(ident, panels * k)]), f"o2s_gemm_{dtype.name}_bf16"
        found = (v.is_constant and dtype.name == "float" and (self.weight_format == "int8" or v.int8)
                 and k >= 2 and int8_columns(v.data))
        if found:
            self.use(dtype, "gemm_i8")
            words = int8_words(found[0])
            ident = self.weight(v, BY_NAME["int32"], words, " (int8, four rows to a word)")
            scales = self.weight(("scales", id(v)), BY_NAME["float"], found[1], " (int8 column scales)",
                                 v.name + "_scales")
            return matrix_args([(ident, panels * words.shape[1]), (scales, panels)]), f"o2s_gemm_{dtype.name}_i8"
        self.use(dtype, "gemm")
        return matrix_args([(self.value(v), panels * k)]), f"o2s_gemm_{dtype.name}"

    def value(self, v) -> str:
        """The C expression (an identifier) for the storage of value v."""
        if v is None:
            return "NULL"
        storage = self.graph.storage[id(v)]
        root = storage.values[0] if storage.kind != "output" else next(
            x for x in storage.values if any(x is o for o in self.graph.outputs))
        key = id(storage)
        if key in self.names.names:
            return self.names.names[key]
        if storage.kind == "weight":
            return self.weight(root, root.dtype, np.asarray(root.data))
        ident = self.names(key, root.name)
        if storage.kind == "arena":
            self.pointers.append({"name": ident, "ctype": root.dtype.c, "arena": f"_arena_{root.dtype.name}",
                                  "offset": f"_off_{root.dtype.name}[{storage.index}]",
                                  "comment": quoted(root.name), "dims": self.dims_comment(root.shape)})
        return ident

    def weight(self, v, dtype, data, note="", name=None) -> str:
        """The identifier of a weight: `data`, stored as `dtype` in that type's block, for the
        value `v` (or a key of its own, then named `name`), `note` added to its comment."""
        key = id(self.graph.storage[id(v)]) if name is None else v
        if key in self.names.names:
            return self.names.names[key]
        name = v.name if name is None else name
        ident = self.names(key, name)
        count = max(int(data.size), 1)
        at = self.weight_ends.get(dtype.name, 0)
        at = -(-at // WEIGHT_ALIGN) * WEIGHT_ALIGN if count >= WEIGHT_ALIGN else at
        self.weight_ends[dtype.name] = at + count
        self.weights.append({"name": ident, "comment": quoted(name) + note,
                             "ctype": dtype.c, "dtype": dtype.name,
                             "dims": "".join(f"[{d}]" for d in data.shape) or "[]",
                             "offset": at, "count": count, "bytes": int(data.nbytes),
                             "data": data if data.size else np.zeros(1, dtype.numpy)})
        return ident

    def arena_name(self, dtype) -> str:
        return f"{self.name}_arena_{dtype.name}"

    def dims_comment(self, shape) -> str:
        return "".join(f"[{self.doc(d)}]" for d in shape) or "[1]"

    # -- nodes ---------------------------------------------------------------------------------
    def node(self, node):
        out = next((v for v in node.outputs if v is not None), None)  # the first output used
        ctx = {"op": node.op_type.lower(), "a": self.attrs(node), "err": self.upper + "_",
               "comment": node_comment(node),
               "i": Refs(self.value, node.inputs), "o": Refs(self.value, node.outputs)}
        if out is not None:
            ctx.update(ctype=out.dtype.c, count=self.dim(product(out.shape)),
                       dims=self.dims_comment(out.shape))
        extra = getattr(self, "ctx_" + node.op_type, None)
        if extra:
            ctx.update(extra(node))
        return ctx

    def attrs(self, node):
        """The node's attributes as templates use them: sizes as C expressions, loop nests as
        loop extents plus each operand's index in the counters _i0, _i1, ..., floats as
        literals of the node's type. New IR ops need nothing more from the emitter."""
        dtype = next(v for v in node.outputs + node.inputs if v is not None).dtype

        def render(x):
            if isinstance(x, (Dim, int)) and not isinstance(x, bool):
                return self.dim(x)
            if isinstance(x, float):
                return c_number(x, dtype)
            if isinstance(x, Nest):
                return {"extents": [self.dim(e) for e in x.extents],
                        "index": [self.nest_index(o, ss) for o, ss in zip(x.offsets, x.strides)]}
            if isinstance(x, (list, tuple)):
                return [render(v) for v in x]
            return x
        return {k: render(v) for k, v in node.attrs.items()}

    def nest_index(self, offset, strides) -> str:
        terms = [f"_i{i}" if s == 1 else f"_i{i}*{self.dim(s)}" for i, s in enumerate(strides) if s != 0]
        return " + ".join(([self.dim(offset)] if not (is_static(offset) and offset == 0) else []) + terms) or "0"

    def index(self, offset, **strides) -> str:
        """offset + local*stride + ... as C text, for the template's loop counters (_b, _t)."""
        terms = [f"{local}*{self.dim(stride)}" if stride != 1 else local for local, stride in strides.items()]
        return " + ".join(terms + ([self.dim(offset)] if offset != 0 else []))

    def ctx_Elementwise(self, node):
        """The expression, from templates/c/expr/<kind>.c.j2, over the operands _x0, _x1, ..."""
        out, src = node.outputs[0], node.inputs[0].dtype
        expr = self.env.get_template(f"c/expr/{node.attrs['kind']}.c.j2").render(
            x=[f"_x{k}" for k in range(len(node.inputs))], a=self.attrs(node), t=out.dtype.name,
            ctype=out.dtype.c, src=src.name, f=OnDemand(lambda: self.functions(src)))
        return {"x_ctype": [v.dtype.c for v in node.inputs], "expr": expr.strip()}

    def ctx_Gemm(self, node):
        a, out = node.attrs, node.outputs[0]
        packed = a["packed"]["B"]
        pack = not packed.is_constant
        self.use(out.dtype, *(["pack"] if pack else []))
        b_args, kernel = self.matrix(packed, out.dtype, a["K"], a["N"])
        alpha, beta = c_number(a["alpha"], out.dtype), c_number(a["beta"], out.dtype)
        has_c = a["c_strides"] is not None and a["beta"] != 0
        formula = ("" if a["alpha"] == 1 else f"{alpha} * ") + "sum_k A[m][k] * B[k][n]"
        if has_c:
            formula += " + " + ("" if a["beta"] == 1 else f"{beta} * ") + "C[m][n]"
        batch = self.attrs(node)["batch"]
        a_base, b_base, y_base = batch["index"]
        return {"M": self.dim(a["M"]), "N": self.dim(a["N"]), "K": self.dim(a["K"]), "t": out.dtype.name,
                "formula": formula, "batch": batch["extents"], "pack": pack, "kernel": kernel,
                "packed": b_args(self.nest_index(0, a.get("matrix_strides", []))),  # this batch entry's B
                "alpha": alpha, "beta": beta if has_c else c_number(0, out.dtype),
                "a_ptr": offset_ptr(self.value(node.inputs[0]), a_base),
                "b_ptr": offset_ptr(self.value(node.inputs[1]), b_base) if pack else None,
                "y_ptr": offset_ptr(self.value(out), y_base),
                "c_ptr": self.value(node.inputs[2]) if has_c else "NULL",
                "a_strides": [self.dim(x) for x in a["a_strides"]],
                "b_strides": [self.dim(x) for x in a["b_strides"]],
                "c_strides": [self.dim(x) for x in a["c_strides"]] if has_c else ["0", "0"]}

    def ctx_Softmax(self, node):
        a, dtype = node.attrs, node.outputs[0].dtype
        return {"outer": self.dim(a["outer"]), "n": self.dim(a["n"]), "inner": self.dim(a["inner"]),
                "search": not (is_static(a["n"]) and a["n"] == 1),  # the max loop from 1 runs at all
                **self.functions(dtype)}  # float: our exp (vectorizable, no errno)

    def ctx_Gather(self, node):
        data, indices = node.inputs
        axis = node.attrs["axis"]
        return {"outer": self.dim(product(data.shape[:axis])), "axis_len": self.dim(data.shape[axis]),
                "inner": self.dim(product(data.shape[axis + 1:])), "n_indices": self.dim(product(indices.shape))}

    def ctx_Fill(self, node):
        return {"value": c_number(node.attrs["value"], node.outputs[0].dtype)}

    def ctx_Materialize(self, node):
        return {"sizes": [self.dim(d) for d in node.attrs["values"].reshape(-1)]}

    def ctx_DynamicSlice(self, node):
        rank = node.inputs[0].rank
        return {"rank": rank, "n_args": self.dim(product(node.inputs[1].shape)),
                "y_index": " + ".join(f"_i{k}*{s}" for k, s in enumerate(self.attrs(node)["out_strides"])) or "0",
                "x_index": "_offset" + "".join(f" + _i{k}*_step[{k}]*_strides[{k}]" for k in range(rank)),
                "has_axes": node.input(3) is not None, "has_steps": node.input(4) is not None}

    def ctx_Recurrent(self, node):
        a = node.attrs
        dtype = node.inputs[0].dtype
        H, I, G = a["hidden"], a["input_size"], GATES[a["cell"]]
        seq, batch, D = a["seq"], a["batch"], len(a["directions"])
        fn = self.functions(dtype)
        shapes = {name: (width, stop - start) for name, start, stop, width in pack_weights.matrices(node)}
        kernels = {k: self.matrix(x, dtype, *shapes[k]) for k, x in a["packed"].items() if k != "bias"}
        bias = self.value(a["packed"]["bias"])
        runtime = {k: not x.is_constant for k, x in a["packed"].items()}
        # only the inputs the code reads: constant W, R and B live on in their packed forms
        needed = {"X", "sequence_lens", "initial_h", "initial_c", "P"}
        needed |= {"W"} if runtime["W"] else set()
        needed |= {"R"} if any(runtime[m] for m in runtime if m.startswith("R")) else set()
        needed |= {"B"} if runtime["bias"] or a["cell"] == "GRU" else set()
        names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
        v = {k: self.value(x) if x is not None and k in needed else None
             for k, x in zip(names, node.inputs + [None] * 8)}
        self.use(dtype, *(["pack"] if any(runtime.values()) else []))
        clip = None if a["clip"] is None else c_number(a["clip"], dtype)
        matrices = []
        for name, start, stop, width in pack_weights.matrices(node):
            source = v["W"] if name == "W" else v["R"]
            matrices.append({"name": name, "n": stop - start, "k": width,
                             "runtime": runtime[name], "b_args": kernels[name][0],
                             "source": source, "source_offset": start * width, "source_size": G * H * width})
        dirs = []
        for d, kind in enumerate(a["directions"]):
            acts = [ACTIVATIONS[name].format(x="{x}", alpha=c_number(al or 0, dtype),
                                             beta=c_number(be or 0, dtype), **fn)
                    for name, al, be in a["activations"][d]]
            # rows of Y and Y_h / Y_c for batch entry _b at step _t
            y_row = (self.index(d * H, _b=seq * D * H, _t=D * H) if a["layout"] else
                     self.index(d * batch * H, _t=D * batch * H, _b=H))
            state_row = self.index(d * H, _b=D * H) if a["layout"] else self.index(d * batch * H, _b=H)
            dirs.append({"index": d, "reverse": kind == "reverse", "acts": acts, "y_row": y_row,
                         "state_row": state_row, "B": v["B"] and offset_ptr(v["B"], str(d * 2 * G * H)),
                         "bias": offset_ptr(bias, str(d * G * H)),
                         "P": v["P"] and offset_ptr(v["P"], str(d * 3 * H)),
                         "m": {m["name"]: m["b_args"](str(d)) for m in matrices},
                         "src": {m["name"]: offset_ptr(m["source"], str(d * m["source_size"] + m["source_offset"]))
                                 for m in matrices}})
        return {"v": v, "Y": [self.value(x) for x in node.outputs] + ["NULL"] * 3, "t": dtype.name,
                "state": self.states.get(id(node)),
                "s": {k: self.value(x) for k, x in a["scratch"].items()}, "dirs": dirs,
                "matrices": matrices, "runtime_bias": runtime["bias"],
                "gemm": {k: kernel for k, (_, kernel) in kernels.items()},
                "seq": self.dim(seq), "batch": self.dim(batch), "rows": self.dim(seq * batch),
                "H": H, "I": I, "GH": G * H, "ZR": 2 * H, "H2": 2 * H, "RB_H": G * H + 2 * H, "H3": 3 * H, "ctype": dtype.c,
                "block": STEP_BLOCK, "layout": a["layout"],
                "one": fn["one"], "clip": clip and f"{{x}} < -{clip} ? -{clip} : ({{x}} > {clip} ? {clip} : {{x}})"}


def max_chain(name, terms):
    """Enumerators defining `name` as the largest of `terms` (0 if none). Each step takes the
    max of the previous step and one term, so no macro argument is ever expanded twice over."""
    if len(terms) <= 1:
        return [(name, terms[0] if terms else "0")]
    steps = [(f"{name}_{i}", f"O2S_MAX({name}_{i - 1}, {t})" if i else t) for i, t in enumerate(terms[:-1])]
    return steps + [(name, f"O2S_MAX({steps[-1][0]}, {terms[-1]})")]


def matrix_args(parts):
    """B(index) of Source.matrix: `parts` are (identifier, elements per matrix)."""
    def at(index, size):
        if index == "0":
            return "0"
        return str(int(index) * size) if index.isdigit() else f"({index}) * {size}"
    return lambda index: ", ".join(offset_ptr(ident, at(index, size)) for ident, size in parts)


def offset_ptr(pointer: str, index: str) -> str:
    return pointer if index == "0" else f"{pointer} + {index}"


def int8_words(q: np.ndarray) -> np.ndarray:
    """int8 panels [P][K][W] as o2s_gemm_float_i8 reads them: int32 [P][ceil(K/4)][W], byte b
    of word (r, l) (bits 8b..8b+7) holding q[4r + b][l], rows past K zero."""
    p, k, w = q.shape
    padded = np.zeros((p, -(-k // 4) * 4, w), np.int8)
    padded[:, :k] = q
    quads = padded.reshape(p, -1, 4, w).transpose(0, 1, 3, 2)  # [P][K/4][W][4 bytes]
    return np.ascontiguousarray(quads).view("<i4")[..., 0].astype(np.int32)


def emit(graph, options, source: str, summary=None):
    """{NAME.h, NAME.c: text, and NAME_weights.c: text or, with options.weights_file,
    NAME.weights: bytes} for the compile options (options.py; its name is set); `source` is the
    model file's name; `summary`, a dict, receives the memory figures."""
    src = Source(graph, options)
    name, weights_file = options.name, options.weights_file
    upper = src.upper
    dims = [{"name": src.dim_name(s), "onnx": quoted(s) + dim_origin(graph, s), "macro": src.bound_macro(s),
             "default": graph.bounds[s]} for s in graph.symbols()]
    dim_names = [d["name"] for d in dims]

    def io(v, direction):
        return {"name": src.value(v), "onnx": quoted(v.name), "ctype": v.dtype.c, "dtype": v.dtype.name,
                "dims": src.dims_comment(v.shape), "const": "const " if direction == "input" else "",
                "shape": [src.dim(d) for d in v.shape]}

    stream = stream_interface(src, graph)
    inputs = [io(v, "input") for v in graph.inputs]
    outputs = [io(v, "output") for v in graph.outputs]
    nodes = [src.node(n) for n in graph.nodes]
    read = {id(graph.storage[id(v)]) for n in graph.nodes for v in n.inputs if v is not None}
    unused = [src.value(v) for v in graph.inputs if id(graph.storage[id(v)]) not in read]
    env = src.env
    body = guarded(graph.nodes, [env.get_template(f"c/{n['op']}.c.j2").render(n=n) for n in nodes],
                   lambda guard: "if (" + " && ".join(("" if c.holds else "!") + src.value(c.value) + "[0]"
                                                     for c in guard) + ") {", "}")
    stream["init"] = [dict(m, source=m["source"] and src.value(m["source"])) for m in stream["members"]]
    blocks = weight_blocks(src, weights_file)  # every weight some code reads is named by now
    for w in src.weights:
        w["at"] = offset_ptr(blocks[w["dtype"]]["base"], str(w["offset"]))
    at = {w["name"]: w["at"] for w in src.weights}
    for m in stream["init"]:
        m["source"] = m["source"] and at[m["source"]]

    dim_params = [f"int64_t {d}" for d in dim_names]
    tensors = [f"const {v['ctype']} *{v['name']}" for v in inputs] + [f"{v['ctype']} *{v['name']}" for v in outputs]
    given = ["const void *_weights"] if weights_file else []  # the weights, when the caller loads them
    arenas = arena_layouts(src, graph)
    params = {"run": ", ".join(given + dim_params + tensors),
              "run_workspace": ", ".join(["void *_workspace"] + given + dim_params + tensors),
              "output_shape": ", ".join(dim_params + ["int output", "int64_t *shape"]),
              "dims": ", ".join(dim_params) or "void",
              "layout": ", ".join(dim_params + ["int64_t *_off"]),
              "sections": ", ".join(dim_params + ["size_t *_at"] + [f"int64_t *_off_{a['dtype']}" for a in arenas]),
              "forward": ", ".join((["{}_state *_state".format(name)] if stream["ok"] else [])
                                   + given + dim_params + tensors
                                   + [f"{a['ctype']} *_arena_{a['dtype']}, const int64_t *_off_{a['dtype']}"
                                      for a in arenas])}
    if stream["ok"]:
        params["step"] = ", ".join([f"{name}_state *_state", "void *_workspace"] + given + dim_params + tensors)
        params["init"] = ", ".join([f"{name}_state *_state"] + given
                                   + ([f"int64_t {stream['batch']}"] if stream["batch_is_dim"] else []))
    args = ", ".join((["_weights"] if weights_file else []) + dim_names + [v["name"] for v in inputs + outputs])
    weight_bytes = sum(w["bytes"] for w in src.weights)
    arena_bytes = sum(a["bytes_default"] for a in arenas)
    kernels = [(t, env.get_template("c/kernels.c.j2").render(
        t=t, ctype=BY_NAME[t].c, panel=pack_weights.PANEL, pack="pack" in used, fma=FMA.get(t),
        storages=[{"suffix": "", "btype": BY_NAME[t].c}] * ("gemm" in used)
        + [{"suffix": "_bf16", "btype": BF16.c}] * ("gemm_bf16" in used), i8="gemm_i8" in used))
        for t, used in sorted(src.kernels.items())]
    vmath = env.loader.get_source(env, "c/vmath.c")[0].strip() if src.vmath else ""
    prelude = env.loader.get_source(env, "c/prelude.c")[0].strip()
    file_bytes = HEADER_BYTES + sum(b["bytes"] for b in blocks.values())
    common = dict(name=name, upper=upper, source=comment(source), dims=dims, params=params,
                  pinned=pinned(graph), stream=stream, inputs=inputs, outputs=outputs,
                  errors=[e for e in ERRORS if e[0] != "EWEIGHTS" or weights_file],
                  arena_bytes=arena_bytes, weight_bytes=weight_bytes, workspace_align=WORKSPACE_ALIGN,
                  weights_file=weights_file, file_bytes=file_bytes, blocks=list(blocks.values()))
    if summary is not None:
        summary.update(name=name, weight_bytes=weight_bytes, arena_bytes=arena_bytes, bounds=dict(graph.bounds),
                       weights_file=file_bytes if weights_file else None)
    header = env.get_template("c/header.h.j2").render(**common)
    text = tidy(env.get_template("c/source.c.j2").render(
        **common, weights=src.weights, arenas=arenas, pointers=src.pointers, body=body, unused=unused,
        kernels=kernels, vmath=vmath, prelude=prelude, align=plan_memory.ALIGN, section_align=SECTION_ALIGN,
        args=args, dim_args=", ".join(dim_names), fingerprint=FINGERPRINT_SLOT,
        weights_version=WEIGHTS_VERSION,
        dispatch=DISPATCH_BF16 if any("gemm_bf16" in used for used in src.kernels.values()) else DISPATCH))
    files = {f"{name}.h": tidy(header)}
    if weights_file:
        # the code and its weights file belong together when the code is the same: the file's
        # header carries a hash of the code after its first comment (which names the model
        # file), and the code compares it at every call
        digest = hashlib.sha256(text[text.index("*/"):].encode("utf-8")).digest()
        text = text.replace(FINGERPRINT_SLOT, ", ".join(f"0x{b:02x}" for b in digest))
        files[f"{name}.c"] = text
        files[f"{name}.weights"] = weights_blob(blocks, src.weights, digest)
    else:
        files[f"{name}.c"] = text
        files[f"{name}_weights.c"] = env.get_template("c/weights.c.j2").render(
            name=name, source=comment(source), blocks=list(blocks.values()),
            body=lambda block: weights_initializer(block, src.weights))
    return files


# NAME.weights: a header of HEADER_BYTES, then each element type's block, from its byte offset.
# The header: "O2SW", the format's version, 0x01020304 (the writer's byte order: little-endian),
# 4 zero bytes, the file's size (8 bytes), the SHA-256 of NAME.c from the end of its first
# comment, without this hash, 8 zero bytes.
HEADER_BYTES = 64
WEIGHTS_VERSION = 1
FINGERPRINT_SLOT = "O2S_FINGERPRINT"


def weight_blocks(src, weights_file: bool):
    """Each element type's block of weights ({dtype name: block}, in order of first use): its
    symbol in NAME_weights.c, its size in elements and bytes, where it starts in NAME.weights,
    and `base`, the C expression for its first element in the code: the global itself, which
    the compiler knows no store can change, or a pointer into the caller's NAME.weights."""
    blocks, offset = {}, HEADER_BYTES
    for dtype_name, end in src.weight_ends.items():
        dtype = BY_NAME[dtype_name]
        symbol = f"{src.name}_weights_{dtype_name}"
        size = end * dtype.numpy.itemsize
        base = (f"(const {dtype.c} *)(const void *)((const unsigned char *)_weights + {offset})" if weights_file
                else f"{symbol}.values")
        per_word = ELEMENTS_PER_WORD.get(dtype_name)
        if per_word:  # whole words
            end = -(-end // per_word) * per_word
            size = end * dtype.numpy.itemsize
        blocks[dtype_name] = {"dtype": dtype_name, "ctype": dtype.c, "symbol": symbol, "count": end,
                              "bytes": size, "offset": offset, "base": base,
                              "words": per_word and end // per_word}
        offset += -(-size // SECTION_ALIGN) * SECTION_ALIGN
    return blocks


def weights_initializer(block, weights) -> str:
    """The initializer lines of one block: each tensor after a comment naming it, zeros between
    tensors up to the next multiple of WEIGHT_ALIGN; floats as words of bit patterns, a word
    holding the end of one tensor and the start of the next under the first's comment."""
    dtype = BY_NAME[block["dtype"]]
    per_word = ELEMENTS_PER_WORD.get(block["dtype"], 1)
    parts, at, carry = [], 0, np.zeros(0, dtype.numpy)  # carry: the floats of a word not yet written
    mine = [w for w in weights if w["dtype"] == block["dtype"]]
    for k, w in enumerate(mine):
        data = np.concatenate([carry, np.zeros(w["offset"] - at, dtype.numpy),
                               np.asarray(w["data"], dtype.numpy).reshape(-1)])
        at = w["offset"] + w["count"]
        if k == len(mine) - 1:  # the block's last word: zeros fill it
            data = np.concatenate([data, np.zeros(block["count"] - at, dtype.numpy)])
        whole = data.size // per_word * per_word
        data, carry = data[:whole], data[whole:]
        text = (c_words(data, dtype).decode("ascii") if block["words"] else c_initializer(data, dtype, "") + "\n")
        parts.append(f"/* {w['comment']} {w['dims']} from {w['offset']} */\n" + (text if data.size else ""))
    return "".join(parts)


def weights_blob(blocks, weights, digest: bytes) -> bytes:
    """NAME.weights: the header, then each block's elements in little-endian order."""
    total = max((b["offset"] + b["bytes"] for b in blocks.values()), default=HEADER_BYTES)
    blob = bytearray(total)
    blob[:HEADER_BYTES] = (b"O2SW" + struct.pack("<IIIQ", WEIGHTS_VERSION, 0x01020304, 0, total)
                           + digest + bytes(8))
    for w in weights:
        block = blocks[w["dtype"]]
        data = np.asarray(w["data"], BY_NAME[w["dtype"]].numpy.newbyteorder("<")).reshape(-1).tobytes()
        start = block["offset"] + w["offset"] * BY_NAME[w["dtype"]].numpy.itemsize
        blob[start:start + len(data)] = data
    return bytes(blob)


def arena_layouts(src, graph):
    """Each element type's arena: its size at the bounds (enumerators sizing the static arena of
    NAME_run) and, as C statements, each buffer's offset at the dims of a call (the layout the
    workspace functions compute, which never exceeds the static one: sizes only grow with dims)."""
    upper, arenas = src.upper, []
    for dtype_name, slots in graph.arenas.items():
        dtype, tag = slots[0].dtype, f"{upper}_%s_{dtype_name.upper()}_%d"
        ends = {id(s): f"{tag % ('OFF', s.index)} + {tag % ('SIZE', s.index)}" for s in slots}
        enumerators = []
        for s in slots:
            enumerators.append((tag % ("SIZE", s.index), f"{upper}_ALIGN({src.bound(s.size)})"))
            enumerators += max_chain(tag % ("OFF", s.index), [ends[id(b)] for b in s.below])
        enumerators += max_chain(f"{upper}_ARENA_{dtype_name.upper()}", list(ends.values()))
        layout = []
        for s in slots:  # placed above every slot it overlaps in time: the largest of their ends
            above = "0"
            for b in s.below:
                end = f"_off[{b.index}] + _size[{b.index}]"
                above = end if above == "0" else f"o2s_max({above}, {end})"
            layout.append((s.index, above, f"{upper}_ALIGN({src.dim(s.size)})"))
        total = graph.arena_elements[dtype_name]
        used = sorted({sym for s in slots for sym in symbols_of(s.size)})
        arenas.append({"name": src.arena_name(dtype), "ctype": dtype.c, "dtype": dtype_name,
                       "macro": f"{upper}_ARENA_{dtype_name.upper()}", "enumerators": enumerators,
                       "elements_default": total, "bytes_default": total * dtype.numpy.itemsize,
                       "layout": layout, "count": len(slots),
                       "unused_dims": [src.dim_name(d) for d in graph.symbols() if d not in used]})
    return arenas


def symbols_of(d):
    return d.symbols() if isinstance(d, Dim) else []


def stream_interface(src, graph):
    """What the step API needs: whether the model streams (and why not), its time and batch
    dims, and each recurrence's members in NAME_state, with the initial state NAME_init writes."""
    plan = getattr(graph, "stream", None)
    reason = "the model was compiled without the streaming analysis" if plan is None else plan.reason
    recurrences = [n for n in graph.nodes if n.op_type == "Recurrent"]
    if reason is None and any(n.attrs.get("guard") for n in recurrences):
        reason = "a recurrence runs only under an If"
    info = {"ok": reason is None, "reason": reason and sentence(reason), "members": []}
    if reason is not None:
        return info
    batch = recurrences[0].attrs["batch"]
    info.update(time=src.dim_name(plan.time), batch=src.dim(batch), batch_is_dim=isinstance(batch, Dim),
                batch_bound=src.bound(batch))
    for k, node in enumerate(recurrences):
        a = node.attrs
        state = {"h": f"_state->h{k}"}
        names = [("h", 5)] + ([("c", 6)] if a["cell"] == "LSTM" else [])
        for member, slot in names:
            initial = node.inputs[slot] if len(node.inputs) > slot else None
            info["members"].append({
                "name": f"{member}{k}", "ctype": node.inputs[0].dtype.c, "H": a["hidden"],
                "comment": f"{node_comment(node)}: {member} [{src.doc(batch)}][{a['hidden']}]",
                "source": initial if initial is not None and initial.is_constant else None})
            state[member] = f"_state->{member}{k}"
        src.states[id(node)] = state
    return info
