"""Shared code for scripts/fit-router and scripts/route-crossval (numpy only).

Learned complexity router: features, fitting, and the reference inference that the Swift side
implements (see `score`).  Model form (llm-sidecar-router/1):

    x   = concat(embedding[384], feats[10])          # feats in FEATURES order
    z   = (x - input_mean) / input_scale
    for each member: h = z; for each layer: h = act(W h + b)   # W is out x in, act relu|linear
    raw = mean over members of h[0]
    score = piecewise-linear interpolation of raw over quantiles.raw -> quantiles.score (clamped)
"""
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

FIT_VERSION = "fit-router/1.0 (ridge, inner-CV embedding penalty)"
FORMAT = "llm-sidecar-router/1"
EMBED_DIM = 384
EMBED_MODEL = "all-MiniLM-L6-v2"
HEURISTIC_FEATURES = ["length", "reasoning", "parts", "code", "math", "constraints",
                      "turns", "tools", "media"]
FEATURES = HEURISTIC_FEATURES + ["heuristic"]
N_INPUT = EMBED_DIM + len(FEATURES)
BENCHMARKS = ["gsm8k", "mmlu", "mt-bench"]
MTBENCH_SCALE = 9.0  # judge scores are 1..10, so a gain lies in [-9, 9]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- data

def read_data(path):
    raw = open(path, "rb").read()
    rows = [json.loads(line) for line in raw.decode("utf-8").split("\n") if line.strip()]
    return rows, hashlib.sha256(raw).hexdigest()


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_sidecar():
    return os.path.join(repo_root(), ".build", "release", "llm-sidecar")


def sidecar_config(config=None):
    """The configuration the feature extraction runs with.  Given: used as is.  Otherwise the
    repo's ./sidecar.conf with any `router = ...` line blanked, so that `route` reports the
    heuristic score (the 10th input), never a learned router's score."""
    if config:
        return os.path.abspath(config), None
    src = os.path.join(repo_root(), "sidecar.conf")
    if not os.path.exists(src):
        return None, None
    import re
    import tempfile
    text = open(src, encoding="utf-8").read()
    text = re.sub(r"(?m)^(\s*)router\s*=.*$", r'\1router = ""', text)
    fd, path = tempfile.mkstemp(prefix="fit-router-", suffix=".conf", dir=repo_root())
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path, path


def _run_sidecar(sidecar, sub, lines, config=None):
    """Streams JSONL through one `sidecar sub` process (run from the repo root), returns {id: obj}."""
    feed = "".join(json.dumps(l) + "\n" for l in lines).encode("utf-8")
    conf, tmp = sidecar_config(config)
    cmd = [sidecar, sub] + (["--config", conf] if conf else [])
    try:
        proc = subprocess.run(cmd, input=feed, cwd=repo_root(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    finally:
        if tmp:
            os.unlink(tmp)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}")
    out = {}
    for line in proc.stdout.decode("utf-8").split("\n"):
        if line.strip():
            o = json.loads(line)
            out[o["id"]] = o
    missing = [l["id"] for l in lines if l["id"] not in out]
    if missing:
        raise RuntimeError(f"{sidecar} {sub}: {len(missing)} ids missing, e.g. {missing[:3]}")
    return out


def _cached(path, ids, make):
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        if len(z["ids"]) == len(ids) and (z["ids"] == ids).all():
            return z["X"]
        log(f"feature cache {path} does not match the data; re-extracting")
    X = make()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, X=X, ids=ids)
    os.replace(tmp, path)
    return X


def load_features(rows, data_sha, sidecar, config=None, cache_dir=None):
    """X (n x 394, float32): the MiniLM embedding then FEATURES.  Cached per data file in
    .build/router-features/<sha256>.{embed,route}.npz (each stage separately)."""
    cache_dir = cache_dir or os.path.join(repo_root(), ".build", "router-features")
    ids = np.array([r["id"] for r in rows])

    def embed():
        t0 = time.time()
        emb = _run_sidecar(sidecar, "embed", [{"id": r["id"], "text": r["prompt"]} for r in rows], config)
        log(f"embedded {len(rows)} prompts in {time.time() - t0:.0f}s")
        E = np.zeros((len(rows), EMBED_DIM), dtype=np.float32)
        for i, r in enumerate(rows):
            e = emb[r["id"]]["embedding"]
            if len(e) != EMBED_DIM:
                raise RuntimeError(f"embedding of {r['id']} has {len(e)} dims")
            E[i] = e
        return E

    def route():
        t0 = time.time()
        rte = _run_sidecar(sidecar, "route", [{"id": r["id"], "prompt": r["prompt"]} for r in rows], config)
        log(f"heuristic features for {len(rows)} prompts in {time.time() - t0:.0f}s")
        F = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
        for i, r in enumerate(rows):
            o = rte[r["id"]]
            F[i, :9] = [float(o["features"].get(k, 0.0)) for k in HEURISTIC_FEATURES]
            F[i, 9] = float(o["score"])
        return F

    F = _cached(os.path.join(cache_dir, f"{data_sha}.route.npz"), ids, route)
    E = _cached(os.path.join(cache_dir, f"{data_sha}.embed.npz"), ids, embed)
    return np.concatenate([E, F], axis=1)


# ------------------------------------------------------------------------------ targets

def targets(rows):
    """Quality gained by sending the prompt to the strong model: strong - weak
    (mt-bench judge scores divided by 9 so every gain lies in [-1, 1])."""
    g = np.array([float(r["strong"]) - float(r["weak"]) for r in rows], dtype=np.float64)
    mt = np.array([r["benchmark"] == "mt-bench" for r in rows])
    g[mt] /= MTBENCH_SCALE
    return g


def benchmark_weights(rows):
    """Per-row weights: each benchmark's total weight is proportional to sqrt(its size), then
    normalised to mean 1.  A compromise between pooling rows (mmlu would be 91% of the fit)
    and equal weight per benchmark (72 mt-bench rows would count as much as 14k mmlu rows)."""
    bench = np.array([r["benchmark"] for r in rows])
    w = np.zeros(len(rows))
    for b in np.unique(bench):
        m = bench == b
        w[m] = np.sqrt(m.sum()) / m.sum()
    return w * (len(rows) / w.sum())


# ------------------------------------------------------------------------------ metrics

def apgr(scores, gain, weak=None):
    """APGR exactly as route_eval.py computes it (ties merged into one step); gain = strong-weak.
    The area does not depend on the weak level, so only the gains are needed."""
    scores = np.asarray(scores, dtype=np.float64)
    gain = np.asarray(gain, dtype=np.float64)
    n = len(gain)
    total = gain.sum()
    if total == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gain[order]
    # merge ties: boundaries where the score changes
    last = np.r_[s[1:] != s[:-1], True]
    cum_g = np.cumsum(g)[last] / n
    cum_x = np.flatnonzero(last).astype(np.float64) + 1
    cum_x /= n
    x = np.r_[0.0, cum_x]
    y = np.r_[0.0, cum_g]
    area = np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2)
    return float(area / (total / n))


def apgr_by_benchmark(scores, rows):
    bench = np.array([r["benchmark"] for r in rows])
    raw_gain = np.array([float(r["strong"]) - float(r["weak"]) for r in rows])
    return {b: apgr(scores[bench == b], raw_gain[bench == b]) for b in BENCHMARKS if (bench == b).any()}


# ------------------------------------------------------------------------------ inference

def forward_raw(router, X):
    """Raw (logit-like) output for rows of X (n x 394), the reference for the Swift side."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    z = (X - np.asarray(router["input_mean"])) / np.asarray(router["input_scale"])
    total = np.zeros(len(X))
    for member in router["members"]:
        h = z
        for layer in member["layers"]:
            W = np.asarray(layer["weights"], dtype=np.float64).reshape(layer["out"], layer["in"])
            h = h @ W.T + np.asarray(layer["bias"], dtype=np.float64)
            if layer["activation"] == "relu":
                h = np.maximum(h, 0.0)
            elif layer["activation"] != "linear":
                raise ValueError(f"unknown activation {layer['activation']}")
        total += h[:, 0]
    return total / len(router["members"])


def quantile_map(q, raw):
    """Piecewise-linear interpolation of raw over q["raw"] -> q["score"], clamped at the ends."""
    return np.interp(np.asarray(raw, dtype=np.float64), np.asarray(q["raw"]), np.asarray(q["score"]))


def score(router, x):
    """Reference implementation of the router: x is one 394-vector (embedding then FEATURES)
    or an n x 394 matrix; returns the score(s) in 0..1."""
    x = np.asarray(x, dtype=np.float64)
    s = quantile_map(router["quantiles"], forward_raw(router, x))
    return float(s[0]) if x.ndim == 1 else s


def make_quantiles(values, knots=101):
    """Knots at the 0%,1%,...,100% quantiles of `values` -> 0.00..1.00.  Raw knots are made
    strictly increasing (ties nudged apart by a tiny step) so interpolation is well defined."""
    v = np.asarray(values, dtype=np.float64)
    raw = np.quantile(v, np.linspace(0, 1, knots))
    span = max(raw[-1] - raw[0], 1e-6)
    eps = span * 1e-9
    for i in range(1, knots):
        if raw[i] <= raw[i - 1]:
            raw[i] = raw[i - 1] + eps
    return {"raw": [float(r) for r in raw], "score": [round(i / (knots - 1), 6) for i in range(knots)]}


# ------------------------------------------------------------------------------ fitting

# Fixed hyperparameters; nothing is tuned per protocol or per held-out benchmark.  The one
# free strength (the embedding penalty) is chosen by inner cross-validation on the training
# rows only.  Design history (see scripts/route-crossval and the report): a 5x MLP 394->64->1
# ensemble and plain ridge were tried first; ridge with a strong penalty on the 384 embedding
# dims and a light one on the 10 heuristic features generalised best and is what ships.
CONFIG = {
    "embed_lambdas": [1e3, 3e3, 1e4, 3e4, 1e5],   # grid for the inner CV (standardised inputs)
    "feature_lambda": 1.0,   # light penalty on the 10 heuristic inputs (few, hand-designed)
    "inner_folds": 5,
    "feature_scale_floor": 0.05,   # input_scale >= this for the heuristic inputs, so a rare
                                   # feature cannot explode at serving time
    "embed_scale_floor": 1e-3,    # MiniLM has a near-constant dim (std < 1e-4); others > 0.02
}


def standardiser(X, cfg=CONFIG):
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    active = std > 1e-8            # inputs that never vary in the fit get weight 0
    floor = np.r_[np.full(EMBED_DIM, cfg["embed_scale_floor"]),
                  np.full(X.shape[1] - EMBED_DIM, cfg["feature_scale_floor"])]
    scale = np.maximum(std, floor)
    scale[~active] = 1.0
    return mean, scale, active


def _ridge(Z, y, w, penalty):
    """Weighted ridge with an unpenalised intercept: returns (beta, bias)."""
    mu = np.average(Z, axis=0, weights=w)
    ym = np.average(y, weights=w)
    Zc = Z - mu
    Zw = Zc * w[:, None]
    beta = np.linalg.solve(Zw.T @ Zc + np.diag(penalty), Zw.T @ (y - ym))
    return beta, ym - mu @ beta


def _penalty(lam, cfg):
    return np.r_[np.full(EMBED_DIM, lam), np.full(N_INPUT - EMBED_DIM, cfg["feature_lambda"])]


def _inner_cv(Z, y, w, bench, seed, cfg):
    """Mean within-benchmark APGR (weighted by sqrt of the benchmark's rows) of out-of-fold
    predictions on the training rows, for each embedding penalty; returns {lambda: apgr}."""
    rng = np.random.default_rng([seed, 7])
    fold = np.zeros(len(y), dtype=int)
    for b in np.unique(bench):
        idx = np.flatnonzero(bench == b)
        rng.shuffle(idx)
        fold[idx] = np.arange(len(idx)) % cfg["inner_folds"]
    # the unscaled gain is enough for APGR (a within-benchmark ranking metric)
    oof = {lam: np.zeros(len(y)) for lam in cfg["embed_lambdas"]}
    for k in range(cfg["inner_folds"]):
        tr = fold != k
        mu = np.average(Z[tr], axis=0, weights=w[tr])
        ym = np.average(y[tr], weights=w[tr])
        Zc = Z[tr] - mu
        Zw = Zc * w[tr, None]
        G, c = Zw.T @ Zc, Zw.T @ (y[tr] - ym)
        for lam in cfg["embed_lambdas"]:
            beta = np.linalg.solve(G + np.diag(_penalty(lam, cfg)), c)
            oof[lam][~tr] = (Z[~tr] - mu) @ beta
    res = {}
    for lam, pred in oof.items():
        vals, wts = [], []
        for b in np.unique(bench):
            m = bench == b
            if np.any(y[m] != 0):
                vals.append(apgr(pred[m], y[m]))
                wts.append(np.sqrt(m.sum()))
        res[lam] = float(np.average(vals, weights=wts))
    return res


def _r(values):
    return [float(f"{v:.7g}") for v in values]


def fit(rows, X, seed=1, cfg=None, data_sha256=None, verbose=True):
    """Fits the router on rows (prompts.jsonl format) with features X; returns the router.json dict."""
    cfg = dict(CONFIG, **(cfg or {}))
    t0 = time.time()
    X = np.asarray(X, dtype=np.float64)
    y = targets(rows)
    w = benchmark_weights(rows)
    bench = np.array([r["benchmark"] for r in rows])
    mean, scale, active = standardiser(X, cfg)
    mean, scale = np.array(_r(mean)), np.array(_r(scale))      # exactly what is served
    Z = (X - mean) / scale
    Z[:, ~active] = 0.0
    cv = _inner_cv(Z, y, w, bench, seed, cfg)
    lam = max(cv, key=lambda l: (cv[l], l))                    # ties: the stronger penalty
    beta, bias = _ridge(Z, y, w, _penalty(lam, cfg))
    beta[~active] = 0.0
    if verbose:
        log("  inner CV (mean within-benchmark APGR): " +
            ", ".join(f"{l:g}: {v:.4f}" for l, v in cv.items()) + f" -> embedding lambda {lam:g}")
    router = {
        "format": FORMAT,
        "fit_version": FIT_VERSION,
        "data_sha256": data_sha256,
        "data_lines": len(rows),
        "seed": seed,
        "embedding": {"model": EMBED_MODEL, "dim": EMBED_DIM},
        "features": list(FEATURES),
        "input_mean": mean.tolist(),
        "input_scale": scale.tolist(),
        "members": [{"layers": [{"in": N_INPUT, "out": 1, "activation": "linear",
                                 "weights": _r(beta), "bias": _r([bias])}]}],
    }
    raw = forward_raw(router, X)      # from the rounded weights, exactly as served
    router["quantiles"] = make_quantiles(raw)
    router["heuristic_quantiles"] = make_quantiles(X[:, N_INPUT - 1])
    router["target"] = ("quality gain of the strong over the weak model, strong - weak (gsm8k/mmlu "
                        "correctness 0/1; mt-bench judge score / 9), weighted least squares")
    counts = {str(b): int((bench == b).sum()) for b in np.unique(bench)}
    router["notes"] = (
        f"One linear member (weighted ridge on standardised inputs). Rows weighted so each "
        f"benchmark's total weight is proportional to sqrt(its rows) {counts}. Penalty "
        f"{lam:g} on the 384 embedding inputs (chosen by {cfg['inner_folds']}-fold inner CV on "
        f"the fitting rows from {cfg['embed_lambdas']}, criterion: mean within-benchmark APGR "
        f"weighted by sqrt(rows); inner CV {', '.join(f'{l:g}={v:.4f}' for l, v in cv.items())}), "
        f"{cfg['feature_lambda']:g} on the 10 heuristic inputs; inputs constant in the fit "
        f"(std 0) get weight 0; input_scale floor {cfg['feature_scale_floor']} for the heuristic "
        f"inputs. score = share of the fitting prompts with a lower raw output (101 knots, raw "
        f"knots strictly increasing).")
    router["inner_cv"] = {"embed_lambda": lam, "apgr": {f"{l:g}": round(v, 6) for l, v in cv.items()}}
    if verbose:
        log(f"  fitted in {time.time() - t0:.1f}s")
    return router
