#!/usr/bin/env python3
"""The notebooks' neuron-diversity loop in scikit-learn, timed: the reference
for `bench_analysis diversity`.

On the file of `bench_analysis make-neurons` ("acts" (N,D), "token_ids" (N),
"documents" (N)), one neuron at a time: its 100 highest rows (ties to the
lower row), the windows of ±5 tokens around them inside their document, each
window a bag of tokens (CountVectorizer over the token ids written as words,
as the notebooks vectorise context strings; --bags scipy builds the count
matrix directly instead), MiniBatchKMeans(n_clusters=5, random_state=0,
n_init=3), and the Shannon entropy in nats of the cluster sizes. The windows
of all rows are built once, inside the time, as ours are.
Prints one JSON line:
  {"what": "sklearn-diversity", "neurons", "rows", "seconds", "seconds_per_neuron",
   "seconds_all_neurons", "mean_diversity", ...}
With --neurons K only the first K neurons run: "seconds" is what was measured,
"seconds_all_neurons" the window time plus K's per-neuron time times D.

    python3 bench/reference_diversity.py --data neurons.safetensors --neurons 96 --out-values ref.json
"""
import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_tsne import load_safetensors  # noqa: E402

TOP, CONTEXT, CLUSTERS = 100, 5, 5


def context_windows(token_ids, documents, context):
    """(N, 2·context+1) token ids around each row, -1 outside its document."""
    n = token_ids.shape[0]
    offsets = np.arange(-context, context + 1)
    at = np.arange(n)[:, None] + offsets[None, :]
    inside = (at >= 0) & (at < n)
    at = np.clip(at, 0, n - 1)
    same = inside & (documents[at] == documents[:, None])
    return np.where(same, token_ids[at], -1)


def entropy(labels, k):
    p = np.bincount(labels, minlength=k) / len(labels)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--neurons", type=int, default=0, help="run the first K neurons only (0: all)")
    ap.add_argument("--bags", choices=["countvectorizer", "scipy"], default="countvectorizer")
    ap.add_argument("--out-values", help="write the per-neuron diversities here as a JSON list")
    args = ap.parse_args()

    import scipy.sparse
    import sklearn
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import CountVectorizer

    data = load_safetensors(args.data)
    acts = np.asarray(data["acts"], dtype=np.float32)
    token_ids = np.asarray(data["token_ids"], dtype=np.int64)
    documents = np.asarray(data["documents"], dtype=np.int64)
    n, d = acts.shape
    k_neurons = min(args.neurons or d, d)
    top = min(TOP, n)
    vocab = int(token_ids.max()) + 1

    start = time.perf_counter()
    windows = context_windows(token_ids, documents, CONTEXT)  # (N, 11)
    texts = [" ".join(str(t) for t in row if t >= 0) for row in windows] if args.bags == "countvectorizer" else None
    windows_s = time.perf_counter() - start
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer distinct points than clusters, convergence notes
        for neuron in range(k_neurons):
            column = acts[:, neuron]
            rows = np.sort(np.argsort(-column, kind="stable")[:top])
            if texts is not None:
                bags = CountVectorizer(token_pattern=r"[^ ]+").fit_transform([texts[r] for r in rows])
            else:
                w = windows[rows]
                keep = w >= 0
                r = np.broadcast_to(np.arange(top)[:, None], w.shape)[keep]
                bags = scipy.sparse.csr_matrix((np.ones(r.shape[0]), (r, w[keep])), shape=(top, vocab))
            km = MiniBatchKMeans(n_clusters=CLUSTERS, random_state=0, n_init=3).fit(bags)
            values.append(entropy(km.labels_, CLUSTERS))
    seconds = time.perf_counter() - start
    per_neuron = (seconds - windows_s) / k_neurons
    print(json.dumps({
        "what": "sklearn-diversity", "neurons": k_neurons, "layer_neurons": d, "rows": n, "bags": args.bags,
        "sklearn_version": sklearn.__version__, "seconds": round(seconds, 3), "windows_s": round(windows_s, 3),
        "seconds_per_neuron": round(per_neuron, 5), "seconds_all_neurons": round(windows_s + per_neuron * d, 3),
        "extrapolated": k_neurons < d, "mean_diversity": float(np.mean(values)),
    }), flush=True)
    if args.out_values:
        with open(args.out_values, "w") as f:
            json.dump(values, f)


if __name__ == "__main__":
    main()
