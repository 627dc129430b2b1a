#!/usr/bin/env python3
"""scikit-learn's t-SNE on the data of `bench_analysis make-data`, timed: the
reference for `bench_analysis tsne`.

The same settings as ours: the first N rows, reduced to 50 dimensions by
scikit-learn's PCA first (scikit-learn's TSNE does not do this itself; ours
does, so the reference does it too, inside the time), then
TSNE(n_components=2, perplexity=30, init="pca", random_state=0, n_jobs=-1,
1000 iterations, learning rate max(N / 12 / 4, 50), which is scikit-learn's
"auto"), Barnes-Hut. Prints one JSON line:
  {"what": "sklearn-tsne", "n", "seconds", "pca_s", "tsne_s", "kl",
   "trustworthiness_k10" (N <= 20000, on the first 5000 rows, untimed), ...}

    python3 bench/reference_tsne.py --data data-10k.safetensors --n 2000

With --timeout-note, a SIGTERM (what `timeout` sends) prints the line with
"timed_out": true and the seconds run so far before the script exits, so a
run cut short still says how long it lasted at least.
"""
import argparse
import inspect
import json
import os
import signal
import struct
import sys
import time

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path):
    """{name: array}; the safetensors package when present, else a minimal reader."""
    try:
        from safetensors.numpy import load_file
        return load_file(path)
    except ImportError:
        pass
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        buffer = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        out[name] = np.frombuffer(buffer[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=0, help="first N rows (0: all)")
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--timeout-note", action="store_true",
                    help="on SIGTERM print the JSON line with timed_out and the seconds so far")
    args = ap.parse_args()

    import sklearn
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE, trustworthiness

    x = load_safetensors(args.data)["x"]
    n = args.n or x.shape[0]
    if n > x.shape[0]:
        sys.exit(f"--n: {n} is more than the {x.shape[0]} rows of {args.data}")
    x = np.ascontiguousarray(x[:n], dtype=np.float32)
    result = {"what": "sklearn-tsne", "n": n, "dim": int(x.shape[1]), "sklearn_version": sklearn.__version__,
              "method": "barnes_hut", "pca_dims": min(50, x.shape[1]), "threads": os.cpu_count()}

    start = time.perf_counter()
    if args.timeout_note:
        def on_term(signum, frame):
            result.update(timed_out=True, seconds=round(time.perf_counter() - start, 3))
            print(json.dumps(result), flush=True)
            os._exit(124)
        signal.signal(signal.SIGTERM, on_term)

    reduced = PCA(n_components=50, random_state=0).fit_transform(x) if x.shape[1] > 50 else x
    pca_s = time.perf_counter() - start
    # max_iter since scikit-learn 1.5; n_iter before (removed in 1.7).
    iterations = "max_iter" if "max_iter" in inspect.signature(TSNE.__init__).parameters else "n_iter"
    tsne = TSNE(n_components=2, perplexity=30.0, init="pca", random_state=0, n_jobs=-1,
                learning_rate=max(n / 12.0 / 4.0, 50.0), **{iterations: args.iterations})
    embedding = tsne.fit_transform(reduced)
    seconds = time.perf_counter() - start
    result.update(seconds=round(seconds, 3), pca_s=round(pca_s, 3), tsne_s=round(seconds - pca_s, 3),
                  kl=float(tsne.kl_divergence_), iterations_run=int(tsne.n_iter_))
    if n <= 20000:
        rows = min(n, 5000)
        result.update(trustworthiness_k10=float(trustworthiness(x[:rows], embedding[:rows], n_neighbors=10)),
                      trustworthiness_rows=rows)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
