"""The Brain-Score room's ``neuroalign`` commands: ``"name": "module:function"``, read by :mod:`neuroalign.cli`."""

COMMANDS: dict[str, str] = {
    "make-synthetic-benchmark": "callbacks.brainscore.benchmarks.synthetic:make_synthetic_benchmark",
    "score": "callbacks.brainscore.commands.score:score_command",
    "layer-sweep": "callbacks.brainscore.commands.layer_sweep:layer_sweep",
    "export-brainscore": "callbacks.brainscore.commands.export:export_brainscore",
    "brainio-files": "callbacks.brainscore.commands.brainio_files:brainio_files_command",
}
