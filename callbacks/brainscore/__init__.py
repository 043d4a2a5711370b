"""The Brain-Score room: types, metrics, features, the scoring engine, benchmarks and commands.

Plain code, usable without Lightning: :func:`callbacks.brainscore.engine.score_model` scores a model on
benchmarks; :class:`callbacks.BrainScoreCallback` calls it at every epoch end. See ``docs/ARCHITECTURE.md``.

Components (import direction: types < metrics, features < benchmarks < engine):

* ``types`` -- regions, :class:`~callbacks.brainscore.types.RegionScore`, stimulus sets, the scoring
  context and the ceiling-formula registry;
* ``metrics/`` -- PLS, Pearson, splits, ceilings, i2n;
* ``features`` -- one forward pass per stimulus set for every layer;
* ``brainio_offline`` -- the guard on brainscore-core's S3 access: missing files fail fast offline, in one line;
* ``brainio_data`` -- the BrainIO files of the public benchmarks (``neuroalign brainio-files``) and
  brainscore-vision's import;
* ``bsv_registry`` -- brainscore-vision's registered benchmark ids; a benchmark's kind and region;
* ``identifiers`` -- model identifiers with a hash of the weights and the input size;
* ``rank_zero`` -- a step on rank zero while the other ranks wait outside any collective (DDP-safe scoring);
* ``model_adapter`` -- a model as brainscore-vision's ``PytorchWrapper`` / ``ModelCommitment``;
* ``benchmarks/`` -- ``base`` (the interface), ``local_folder`` / ``local_neural`` /
  ``local_behavioural`` / ``local`` (lab folders), ``synthetic``, ``brainscore_vision``;
* ``engine`` -- ``load_benchmark(s)``, ``score_round``, ``score_benchmarks``, ``score_model``;
* ``profile`` -- region x layer profiles: the best layer per region chosen on held-out CV splits, the heatmap;
* ``summary`` -- the Table-3-like summary files.

Commands (``commands/``): ``score``, ``layer_sweep``, ``export``, ``brainio_files``.
"""
