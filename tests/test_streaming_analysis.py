"""The streaming analysis (passes/streaming.py, the ops' `stream` rules) and the canonicalization
of zero initial states (passes/zero_states.py).

Verdicts are checked on the PyTorch exports (expected verdicts derived from their manifest), the
samples and small hand-built models covering each rule and each refusal. Every model called
streamable is then run in onnxruntime, in a variant whose recurrences take their state as inputs
and give it back as outputs, over the whole sequence and chunk by chunk for random splits (one
step at a time among them): per-step outputs joined must equal the whole run's, last-step outputs
the last chunk's. That proves the verdicts sound without any generated code."""
import copy
import glob
import json
import os
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import assert_close, build, ort_run, save
from onnx2src import Options, frontend
from onnx2src.ops import LAST
from onnx2src.passes import PIPELINE, lower, run_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTS = os.path.join(ROOT, "tests", "exports")
RECURRENT = ("RNN", "GRU", "LSTM")
RNG = np.random.default_rng(9)


def analyze(path):
    """The ONNX-level graph as the pipeline leaves it just before lowering (stream set)."""
    graph = frontend.load(path)
    for p in PIPELINE[:PIPELINE.index(lower)]:
        p.run(graph)
    return graph


# -- verdicts on the exports ----------------------------------------------------------------------

def _manifest(sub=""):
    with open(os.path.join(EXPORTS, sub, "manifest.json")) as f:
        return json.load(f)


def _expected(entry):
    """(time, outputs) or the start of the reason, from what the manifest says of an export."""
    if not set(RECURRENT) & set(entry["op_types"]):
        return "the model has no recurrence"  # torch.export unrolled the nn.RNN
    if entry["bidirectional"]:
        return "is bidirectional"
    if "seq" in entry["static_dims"]:
        return "has a sequence length fixed at 7 in the model"
    if entry["initial_state"]:
        return 'takes its initial state from input "h0"'
    axis = 1 if entry["batch_first"] else 0
    outputs = {name: LAST if name != "output" or entry["head"] == "last" else axis for name in entry["outputs"]}
    return "seq", outputs


@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: e["file"])
def test_export_verdicts(entry):
    stream = analyze(os.path.join(EXPORTS, entry["file"])).stream
    expected = _expected(entry)
    if isinstance(expected, str):
        assert stream.time is None and expected in stream.reason, stream.reason
    else:
        assert (stream.time, stream.batch, stream.reason) == ("seq", "batch", None)
        assert stream.outputs == expected[1]
        assert stream.inputs == {"input": 1 if entry["batch_first"] else 0}


SLICING = {  # name part → the reason (the refused Slice) or None (streamable)
    "s1_3": "takes steps [1:min(3, ", "last2": "takes steps [max((", "rev3": "takes steps [max((",
    "inner": "takes steps [1:(", "step2": ":2] of the time axis", "chunk2": "takes steps [0:min(floor((",
    "none": None,
}


@pytest.mark.parametrize("entry", [e for e in _manifest("slicing") if "split2" not in e["file"]],
                         ids=lambda e: e["file"])
def test_slicing_export_verdicts(entry):
    """PyTorch slices of the output sequence: only the whole sequence streams; a slice of steps
    is refused with its bounds (split2 exports do not compile at all: static split sizes)."""
    stream = analyze(os.path.join(EXPORTS, "slicing", entry["file"])).stream
    name = entry["file"]
    if "_bi_" in name:
        assert "is bidirectional" in stream.reason
    elif len(entry["inputs"]) > 1:
        assert "takes its initial state from input" in stream.reason
    else:
        part = next(p for p in SLICING if f"_{p}_" in name)
        if SLICING[part] is None:
            assert stream.reason is None and stream.time == list(entry["inputs"].values())[0][1]
        else:
            assert stream.time is None and SLICING[part] in stream.reason, stream.reason


@pytest.mark.parametrize("name, verdict", [
    ("simple_lstm", ("seq", {"output": LAST})),
    ("simple_gru", 'GRU "/gru/GRU" takes its initial state from input "hidden"'),
    ("simple_rnn", 'RNN "/rnn/RNN" takes its initial state from input "hidden"'),
])
def test_sample_verdicts(name, verdict):
    stream = analyze(os.path.join(ROOT, "samples", f"{name}.onnx")).stream
    if isinstance(verdict, str):
        assert stream.time is None and stream.reason.startswith(verdict)
    else:
        assert (stream.time, stream.outputs, stream.reason) == (verdict[0], verdict[1], None)


@pytest.mark.parametrize("name, verdict", [
    ("gru_act_dy", "seq"), ("gru_act_ts17", "seq"), ("ln_gru_dy", "seq"), ("ln_gru_ts17", "seq"),
    ("crnn_ts17", 'LSTM "/rnn/LSTM" runs over (floor(max((time - 2), 0) / 2) + 1) steps'),
    ("crnn_dy", "has a sequence length fixed at 5"),
    ("resnet_ts17", "the model has no recurrence"),
])
def test_op_export_verdicts(name, verdict):
    stream = analyze(os.path.join(EXPORTS, "ops", f"{name}.onnx")).stream
    if verdict == "seq":
        assert (stream.time, stream.reason) == ("seq", None)
    else:
        assert stream.time is None and verdict in stream.reason, stream.reason


# -- hand-built models --------------------------------------------------------------------------

class Net:
    """A small ONNX model around recurrences: x is [T, B, 3] (or [B, T, 3] with layout 1)."""

    def __init__(self, layout=0, seq="T", size=3, x_type=TensorProto.FLOAT):
        self.nodes, self.inits, self.outs, self.count = [], [], [], 0
        shape = ["B", seq, size] if layout else [seq, "B", size]
        self.inputs = [helper.make_tensor_value_info("x", x_type, shape)]

    def name(self, stem):
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, array, dtype=np.float32):
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype), name))
        return name

    def op(self, op_type, *inputs, outputs=1, **attrs):
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=f"/{names[0]}", **attrs))
        return names[0] if outputs == 1 else names

    def rnn(self, op_type, x, size=3, hidden=4, direction="forward", states=(), seq_lens="", **attrs):
        """[Y, Y_h(, Y_c)] of a recurrence with random weights."""
        gates, dirs = {"RNN": 1, "GRU": 3, "LSTM": 4}[op_type], 2 if direction == "bidirectional" else 1
        w = self.const(RNG.normal(0, 0.5, (dirs, gates * hidden, size)))
        r = self.const(RNG.normal(0, 0.5, (dirs, gates * hidden, hidden)))
        b = self.const(RNG.normal(0, 0.2, (dirs, 2 * gates * hidden)))
        outs = 3 if op_type == "LSTM" else 2
        return self.op(op_type, x, w, r, b, seq_lens, *states, outputs=outs, hidden_size=hidden,
                       direction=direction, **attrs)

    def output(self, *names):
        self.outs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names]
        return self

    def model(self):
        graph = helper.make_graph(self.nodes, "net", self.inputs, self.outs, self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def squeezed(net, y):
    """Y [T, 1, B, H] → [T, B, H]."""
    return net.op("Squeeze", y, net.const([1], np.int64))


def _every_step_head():
    net = Net()
    y = squeezed(net, net.rnn("LSTM", "x")[0])
    return net.output(net.op("Flatten", net.op("MatMul", y, net.const(RNG.normal(size=(4, 2)))), axis=1))


def _last_slice_head():
    net = Net()
    y = squeezed(net, net.rnn("GRU", "x")[0])
    last = net.op("Slice", y, net.const([-1], np.int64), net.const([2**62], np.int64), net.const([0], np.int64))
    return net.output(net.op("Gemm", net.op("Squeeze", last, net.const([0], np.int64)),
                             net.const(RNG.normal(size=(4, 2))), transB=0))


def _gather_last_and_state():
    net = Net()
    y, y_h, y_c = net.rnn("LSTM", "x")
    last = net.op("Gather", squeezed(net, y), net.const(-1, np.int64), axis=0)
    return net.output(net.op("Tanh", last), y_h, y_c)


def _layout1_stack():
    """Two GRUs, batch first, the second reading the first's output through Transpose/Reshape."""
    net = Net(layout=1)
    y = net.rnn("GRU", "x", layout=1)[0]                                  # [B, T, 1, 4]
    flat = net.op("Reshape", y, net.const([0, 0, 4], np.int64))           # [B, T, 4]
    y2 = net.rnn("GRU", flat, size=4, hidden=5, layout=1)[0]              # [B, T, 1, 5]
    return net.output(net.op("Softmax", net.op("Squeeze", y2, net.const([2], np.int64)), axis=-1))


def _norms_and_reductions():
    net = Net()
    y = squeezed(net, net.rnn("RNN", "x")[0])                             # [T, B, 4]
    ln = net.op("LayerNormalization", y, net.const(np.ones(4)), net.const(np.zeros(4)), axis=-1)
    mean = net.op("ReduceMean", ln, axes=[2], keepdims=0)  # [T, B]
    both = net.op("Concat", ln, net.op("Relu", y), axis=2)                # [T, B, 8]
    gated = net.op("Where", net.op("Greater", both, net.const(0.1)), both, net.const(0.0))
    return net.output(mean, net.op("Einsum", gated, net.const(RNG.normal(size=(8, 3))), equation="tbh,ho->tbo"))


def _conv_over_channels():
    """[T, B, H] → [B, H, T] → Conv with kernel 1 along T and BatchNorm → back: per-step."""
    net = Net()
    y = squeezed(net, net.rnn("LSTM", "x")[0])
    bht = net.op("Transpose", y, perm=[1, 2, 0])
    conv = net.op("Conv", bht, net.const(RNG.normal(size=(6, 4, 1))), net.const(RNG.normal(size=6)))
    bn = net.op("BatchNormalization", conv, *[net.const(RNG.uniform(0.5, 1.5, 6)) for _ in range(4)])
    padded = net.op("Pad", bn, net.const([0, 1, 0, 0, 1, 0], np.int64))   # channels only
    return net.output(net.op("Transpose", padded, perm=[2, 0, 1]))


def _embedding_ids():
    """int64 token ids [T, B] → Gather of an embedding table → GRU."""
    net = Net(x_type=TensorProto.INT64)
    net.inputs = [helper.make_tensor_value_info("x", TensorProto.INT64, ["T", "B"])]
    emb = net.op("Gather", net.const(RNG.normal(size=(5, 3))), "x", axis=0)  # [T, B, 3]
    return net.output(net.rnn("GRU", emb)[0])


def _filled_from_shape():
    """A constant over [T, B, H] built from Shape (ConstantOfShape, Expand) added to Y."""
    net = Net()
    y = squeezed(net, net.rnn("RNN", "x")[0])
    shape = net.op("Shape", y)
    ones = net.op("ConstantOfShape", shape, value=numpy_helper.from_array(np.array([0.5], np.float32)))
    bias = net.op("Expand", net.const(RNG.normal(size=(1, 1, 4))), shape)
    return net.output(net.op("Add", net.op("Mul", y, ones), bias))


def _constant_state():
    """A learned (constant) initial state, and the zeros one of a second layer."""
    net = Net()
    net.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 2, 3])]
    h0 = net.const(RNG.normal(size=(1, 2, 4)))
    y = squeezed(net, net.rnn("GRU", "x", states=[h0])[0])
    y2 = net.rnn("LSTM", y, size=4, states=[net.const(np.zeros((1, 2, 4))), net.const(np.zeros((1, 2, 4)))])
    return net.output(y2[0], y2[2])


STREAMABLE = {  # model → (its graph outputs' classes)
    "every_step_head": (_every_step_head, [0]),
    "last_slice_head": (_last_slice_head, [LAST]),
    "gather_last_and_state": (_gather_last_and_state, [LAST, LAST, LAST]),
    "layout1_stack": (_layout1_stack, [1]),
    "norms_and_reductions": (_norms_and_reductions, [0, 0]),
    "conv_over_channels": (_conv_over_channels, [0]),
    "embedding_ids": (_embedding_ids, [0]),
    "filled_from_shape": (_filled_from_shape, [0]),
    "constant_state": (_constant_state, [0, LAST]),
}


@pytest.mark.parametrize("name", STREAMABLE)
def test_streamable(name, tmp_path):
    make, classes = STREAMABLE[name]
    stream = analyze(save(make().model(), tmp_path)).stream
    assert (stream.time, stream.batch, stream.reason) == ("T", 2 if name == "constant_state" else "B", None)
    assert list(stream.outputs.values()) == classes


def _refused(build_tail, op="LSTM", **rnn):
    """A recurrence (with `rnn` attributes) whose squeezed Y goes through build_tail(net, y, y_h)."""
    def make():
        net = Net()
        y, y_h = net.rnn(op, "x", **rnn)[:2]
        return net.output(*build_tail(net, y, y_h))
    return make


def _plain(net, y, y_h):
    return [y]


def _state_from_input():
    net = Net()
    net.inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "B", 4]))
    return net.output(net.rnn("GRU", "x", states=["h0"])[0])


def _state_at_run_time():
    net = Net()
    shape = net.op("Concat", net.const([1], np.int64),
                   net.op("Slice", net.op("Shape", "x"), *(net.const([k], np.int64) for k in (1, 2))),
                   net.const([4], np.int64), axis=0)
    h0 = net.op("Expand", net.const(np.ones(1)), shape)  # ones, not zeros
    return net.output(net.rnn("RNN", "x", states=[h0])[0])


def _static_seq():
    net = Net(seq=100)
    return net.output(net.rnn("LSTM", "x")[0])


def _sequence_lens():
    net = Net()
    net.inputs.append(helper.make_tensor_value_info("lens", TensorProto.INT32, ["B"]))
    return net.output(net.rnn("GRU", "x", seq_lens="lens")[0])


def _shape_as_data(net, y, y_h):
    t = net.op("Cast", net.op("Gather", net.op("Shape", "x"), net.const(0, np.int64), axis=0), to=TensorProto.FLOAT)
    return [net.op("Div", y, t)]


def _mix_last(net, y, y_h):
    return [net.op("Add", squeezed(net, y), y_h)]   # [T, B, H] + [1, B, H]


def _conv_over_time(net, y, y_h):
    bht = net.op("Transpose", squeezed(net, y), perm=[1, 2, 0])
    return [net.op("Conv", bht, net.const(RNG.normal(size=(4, 4, 3))), pads=[1, 1])]


def _axis_op(op_type, **attrs):
    return lambda net, y, y_h: [net.op(op_type, squeezed(net, y), **attrs)]


REFUSED = {
    "bidirectional": (_refused(_plain, direction="bidirectional"), 'LSTM "/lstm" is bidirectional'),
    "reverse": (_refused(_plain, op="GRU", direction="reverse"), 'GRU "/gru" is reverse'),
    "sequence_lens": (_sequence_lens, 'GRU "/gru" takes sequence_lens'),
    "static_seq": (_static_seq, 'LSTM "/lstm" has a sequence length fixed at 100 in the model: export it '
                                'with a dynamic time axis'),
    "state_from_input": (_state_from_input, 'GRU "/gru" takes its initial state from input "h0"'),
    "state_at_run_time": (_state_at_run_time, 'RNN "/rnn" computes its initial_h at run time (Expand "/expand")'),
    "reduce_over_time": (_refused(lambda net, y, y_h: [net.op("ReduceMean", y, axes=[0])]),
                         'ReduceMean "/reducemean" reduces over the time axis'),
    "softmax_over_time": (_refused(_axis_op("Softmax", axis=0)), 'Softmax "/softmax" normalizes over the time axis'),
    "cumsum_over_time": (_refused(lambda net, y, y_h: [net.op("CumSum", y, net.const(0, np.int64))]),
                         'CumSum "/cumsum" sums along the time axis'),
    "conv_over_time": (_refused(_conv_over_time), 'Conv "/conv" slides along the time axis (kernel 3, stride 1, '
                                                  'pads 1 and 1)'),
    "attention_over_time": (_refused(lambda net, y, y_h: [net.op("MatMul", net.op("Transpose", y, perm=[1, 2, 3, 0]),
                                                                 net.op("Transpose", y, perm=[1, 2, 0, 3]))]),
                            'MatMul "/matmul" sums over the time axis'),
    "first_step": (_refused(lambda net, y, y_h: [net.op("Gather", y, net.const(0, np.int64), axis=0)]),
                   'Gather "/gather" takes step(s) 0 of the time axis'),
    "last_two_steps": (_refused(lambda net, y, y_h: [net.op("Slice", y, net.const([-2], np.int64),
                                                            net.const([2**62], np.int64))]),
                       'Slice "/slice" takes steps [max((T - 2), 0):T:1] of the time axis'),
    "mix_last_and_steps": (_refused(_mix_last), 'Add "/add" mixes the last step with every step'),
    "shape_as_data": (_refused(_shape_as_data), 'Cast "/cast" computes with the sequence length'),
    "merged_time_batch": (_refused(lambda net, y, y_h: [net.op("Reshape", y, net.const([-1, 4], np.int64))]),
                          'Reshape "/reshape" merges the time axis with another'),
    "no_recurrence": (lambda: (lambda net: net.output(net.op("Relu", "x")))(Net()), "the model has no recurrence"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused(name, tmp_path):
    make, reason = REFUSED[name]
    stream = analyze(save(make().model(), tmp_path)).stream
    assert stream.time is None
    assert re.sub(r'"/([a-z]+)\d+"', r'"/\1"', stream.reason).startswith(reason), stream.reason


# -- soundness: whole run == chunked run, in onnxruntime ------------------------------------------

def stateful(model, graph):
    """The model with each recurrence's initial state a new graph input and its final state a new
    graph output (named NAME_out); and {state input: its start, a function of the batch size
    (zeros, or the model's constant)}."""
    model = copy.deepcopy(model)
    g = model.graph
    analyzed = {n.name: n for n in graph.nodes if n.op_type in RECURRENT}
    starts = {}
    for k, node in enumerate([n for n in g.node if n.op_type in RECURRENT]):
        ir_node = analyzed[node.name]
        layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
        hidden = ir_node.input(2).shape[2]
        lstm = node.op_type == "LSTM"
        node.input.extend([""] * ((7 if lstm else 6) - len(node.input)))
        node.output.extend([""] * ((3 if lstm else 2) - len(node.output)))
        for slot in (5, 6) if lstm else (5,):
            name = f"stream{k}_{'hc'[slot - 5]}"
            known = ir_node.input(slot)
            starts[name] = ((lambda b, data=known.data: data) if known is not None else
                            (lambda b, layout=layout, hidden=hidden:
                             np.zeros((b, 1, hidden) if layout else (1, b, hidden), np.float32)))
            node.input[slot] = name
            g.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            node.output[slot - 4] = node.output[slot - 4] or f"{name}_final"
            g.node.append(helper.make_node("Identity", [node.output[slot - 4]], [f"{name}_out"]))
            g.output.append(helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, None))
    return model, starts


def random_inputs(model, stream, steps):
    """{input name: array}: `steps` steps, every other symbolic dim 2."""
    arrays = {}
    for vi in model.graph.input:
        t = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else steps if d.dim_param == stream.time else 2
                 for d in t.shape.dim]
        if t.elem_type == TensorProto.FLOAT:
            arrays[vi.name] = RNG.normal(size=shape).astype(np.float32)
        else:
            arrays[vi.name] = RNG.integers(0, 5, size=shape).astype(helper.tensor_dtype_to_np_dtype(t.elem_type))
    return arrays


def splits(steps):
    """Chunk lengths: one step at a time, all at once less one, and random ones."""
    cuts = [[1] * steps, [steps - 1, 1], [1, steps - 1]]
    for _ in range(3):
        points = sorted(RNG.choice(np.arange(1, steps), size=RNG.integers(1, 4), replace=False))
        cuts.append(list(np.diff([0, *points, steps])))
    return cuts


def assert_streams(model, path, tmp_path, steps=9):
    """Chunk by chunk, carrying the state, equals the whole run (and the model itself)."""
    graph = analyze(path)
    stream = graph.stream
    assert stream.reason is None, stream.reason
    variant, starts = stateful(model, graph)
    variant_path = save(variant, tmp_path, "stateful")
    inputs = random_inputs(model, stream, steps)
    batch = stream.batch if isinstance(stream.batch, int) else 2
    state = {name: start(batch) for name, start in starts.items()}
    whole = ort_run(variant_path, list(inputs.values()) + list(state.values()))
    n = len(model.graph.output)
    assert_close(whole[:n], ort_run(path, list(inputs.values())), "the stateful variant")
    for lengths in splits(steps):
        chunks, carried, start = [], dict(state), 0
        for length in lengths:
            part = [x if stream.inputs[name] is None else
                    np.take(x, np.arange(start, start + length), axis=stream.inputs[name])
                    for name, x in inputs.items()]
            got = ort_run(variant_path, part + list(carried.values()))
            carried = dict(zip(carried, got[n:]))
            chunks.append(got[:n])
            start += length
        for i, (vi, c) in enumerate(zip(model.graph.output, stream.outputs.values())):
            if isinstance(c, int):
                joined = np.concatenate([chunk[i] for chunk in chunks], axis=c)
                assert_close([joined], [whole[i]], f"{vi.name} over chunks {lengths}")
            else:  # the last step's, or time-independent: the last chunk has it
                assert_close([chunks[-1][i]], [whole[i]], f"{vi.name} after chunks {lengths}")
        assert_close(list(carried.values()), whole[n:], f"final state after chunks {lengths}")


STREAMING_EXPORTS = [os.path.join(EXPORTS, e["file"]) for e in _manifest() if not isinstance(_expected(e), str)]
STREAMING_EXPORTS += [os.path.join(ROOT, "samples", "simple_lstm.onnx")]
STREAMING_EXPORTS += [os.path.join(EXPORTS, sub, f) for sub, f in
                      (("ops", "gru_act_dy.onnx"), ("ops", "ln_gru_ts17.onnx"),
                       ("slicing", "rnn_tanh_bf_none_bx_ts14.onnx"))]


@pytest.mark.parametrize("path", STREAMING_EXPORTS, ids=os.path.basename)
def test_exports_stream_in_onnxruntime(path, tmp_path):
    assert_streams(onnx.load(path), path, tmp_path)


@pytest.mark.parametrize("name", [n for n in STREAMABLE if n != "layout1_stack"])  # onnxruntime runs
def test_hand_built_stream_in_onnxruntime(name, tmp_path):                          # no layout 1 recurrence
    model = STREAMABLE[name][0]().model()
    assert_streams(model, save(model, tmp_path), tmp_path)


# -- canonicalization -----------------------------------------------------------------------------

def compiled(path):
    graph = frontend.load(path)
    run_all(graph, Options("c", max_dims={s: 16 for s in graph.symbols()}))
    return graph


@pytest.mark.parametrize("path", [p for p in glob.glob(os.path.join(EXPORTS, "*.onnx")) if "_noh0_" in p]
                         + [os.path.join(ROOT, "samples", "simple_lstm.onnx")], ids=os.path.basename)
def test_exporters_zero_states_dropped(path):
    """Both exporters' torch.zeros initial states (ConstantOfShape of a Shape chain; Expand of 0
    then Slice) leave no initial state, and no fill, in the IR."""
    graph = compiled(path)
    recurrences = [n for n in graph.nodes if n.op_type == "Recurrent"]
    assert all(n.input(5) is None and n.input(6) is None for n in recurrences)
    assert not any(n.op_type == "Fill" for n in graph.nodes)


def _zero_states():
    """Zero states spelled four ways: ConstantOfShape from Shape, Expand of a zero, a zero
    initializer, ConstantOfShape without a value; and a nonzero one, kept."""
    net = Net()
    net.inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 3])]
    shape = net.op("Concat", net.const([1], np.int64),
                   net.op("Slice", net.op("Shape", "x"), *(net.const([k], np.int64) for k in (1, 2))),
                   net.const([4], np.int64), axis=0)
    zeros = net.op("ConstantOfShape", shape, value=numpy_helper.from_array(np.zeros(1, np.float32)))
    expanded = net.op("Expand", net.const(0.0), shape)
    y = squeezed(net, net.rnn("LSTM", "x", states=[zeros, expanded])[0])
    y2 = squeezed(net, net.rnn("GRU", y, size=4, states=[net.op("ConstantOfShape", shape)])[0])
    ones = net.op("Expand", net.const(0.25), shape)
    return net.output(net.rnn("RNN", y2, size=4, states=[ones])[0])


def test_zero_states_compile_to_no_state(tmp_path, target):
    path = save(_zero_states().model(), tmp_path)
    states = [n.input(5) is None for n in compiled(path).nodes if n.op_type == "Recurrent"]
    assert states == [True, True, False]
    x = RNG.normal(size=(6, 2, 3)).astype(np.float32)
    assert_close(build(path, target, tmp_path / target)(x), ort_run(path, [x]))
