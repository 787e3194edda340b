"""The experiment half of the series: what a training run is (conditions), which runs a plan holds (plans,
gpu_reference), training them resumably into results files (runner, sweep, sweep_run, store), and reading
them (results, zoo, findings, stats, baseline); bench and gpucheck measure the training path's speed.

The lesson half (models, data, trainer, settings, profile, costs, plots, ...) does not import it; the
notebooks read results through ``zoo`` and ``findings``, and two modules of the lesson half cross over on
purpose: ``notebook`` (lesson 09's setup prints its plan's estimate) and ``exercises.answers`` (answers
computed from the stored records).
"""
