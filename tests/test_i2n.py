"""i2n: consistent simulated observers score high, shuffled ones low; the ceiling is below 1 with noise."""

from __future__ import annotations

import numpy as np

from callbacks.brainscore.metrics.i2n import i2n_score


def _observer(n_images=60, n_objects=4, trials=80, seed=0):
    rng = np.random.default_rng(seed)
    objects = [f"o{i}" for i in range(n_objects)]
    truth = np.arange(n_images) % n_objects
    logits = rng.normal(size=(n_images, n_objects))
    logits[np.arange(n_images), truth] += 1.0
    idx, tr, ch, ds = [], [], [], []
    for i in range(n_images):
        for _ in range(trials):
            d = rng.choice([o for o in range(n_objects) if o != truth[i]])
            p = 1 / (1 + np.exp(logits[i, truth[i]] - logits[i, d]))
            idx.append(i), tr.append(objects[truth[i]]), ds.append(objects[d])
            ch.append(objects[d] if rng.uniform() < p else objects[truth[i]])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, objects, [objects[t] for t in truth], np.array(idx), tr, ch, ds


def test_matching_model_beats_shuffled_model():
    probs, objects, truths, idx, tr, ch, ds = _observer()
    good = i2n_score(probs, objects, truths, idx, tr, ch, ds)
    bad = i2n_score(np.random.default_rng(1).permutation(probs), objects, truths, idx, tr, ch, ds)
    assert 0 < good["ceiling"] < 1
    assert good["raw"] > 0.3 > bad["raw"]
    assert good["ceiled"] > bad["ceiled"]
    no_distractor = i2n_score(probs, objects, truths, idx, tr, ch, None)
    assert np.isfinite(no_distractor["raw"])
