#!/usr/bin/python3
# onnx-reference.py MODEL.onnx IMAGES.f32 N C H W: runs an ONNX graph with plain numpy (the
# operators Prunescope's G graphs and the test models use) on N float32 NCHW images and
# prints the first output, one row per line. An independent second reading of the files
# Prunescope writes: nothing here shares code with the C reader.
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    group = a.get("group", 1)
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, m, oh, ow), np.float64)
    mg = m // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        ws = w[g * mg:(g + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def maxpool(x, a):
    kh, kw = a["kernel_shape"]
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    sh, sw = a.get("strides", [1, 1])
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    oh = (x.shape[2] + pt + pb - kh) // sh + 1
    ow = (x.shape[3] + pl + pr - kw) // sw + 1
    y = np.full(x.shape[:2] + (oh, ow), -np.inf)
    for i in range(kh):
        for j in range(kw):
            y = np.maximum(y, xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw])
    return y


def run(model, x):
    g = model.graph
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) if t.data_type == 1
           else numpy_helper.to_array(t) for t in g.initializer}
    env[g.input[0].name] = x
    for node in g.node:
        a = attrs(node)
        i = [env[name] if name else None for name in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif op == "Conv":
            out = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Relu":
            out = np.maximum(i[0], 0)
        elif op == "MaxPool":
            out = maxpool(i[0], a)
        elif op == "GlobalAveragePool":
            out = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            out = i[0].reshape(i[0].shape[0], -1)
        elif op == "Gemm":
            w = i[1].T if a.get("transB", 0) else i[1]
            out = a.get("alpha", 1.0) * i[0] @ w + (a.get("beta", 1.0) * i[2] if len(i) > 2 else 0)
        elif op in ("Add", "Sub", "Mul", "Div"):
            out = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        elif op == "BatchNormalization":
            s = i[1] / np.sqrt(i[4] + a.get("epsilon", 1e-5))
            out = (i[0] - i[3].reshape(1, -1, 1, 1)) * s.reshape(1, -1, 1, 1) + i[2].reshape(1, -1, 1, 1)
        elif op == "ArgMax":
            out = np.argmax(i[0], axis=a.get("axis", 0))
            if a.get("keepdims", 1):
                out = np.expand_dims(out, a.get("axis", 0))
        elif op == "Equal":
            out = i[0] == i[1]
        elif op == "Where":
            out = np.where(i[0], i[1], i[2])
        else:
            sys.exit("operator %s is not in the reference" % op)
        env[node.output[0]] = out
    return env[g.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    n, c, h, w = (int(v) for v in sys.argv[3:7])
    x = np.fromfile(sys.argv[2], dtype=np.float32).reshape(n, c, h, w).astype(np.float64)
    y = run(model, x)
    for row in y.reshape(n, -1):
        print(" ".join(repr(float(v)) for v in row))


main()
