# RL training: one job per model x algorithm x seed, all logging to one MLflow store per results folder.


rule mlflow_experiment:
    """Create the MLflow experiment once, before the training jobs fan out: parallel jobs creating
    it in one SQLite file race ("database is locked")."""
    conda:
        CONDA_ENV
    output:
        f"{R}/mlflow_experiment_id",
    params:
        uri=tracking_uri_arg(),
        name=shlex.quote(CFG.tracking.experiment),
        # lens.tracking puts the SQLite store in the folder that holds runs/, i.e. results_dir.
        runs=lambda wc, output: f"{Path(output[0]).parent}/runs",
    log:
        f"{R}/logs/mlflow_experiment.log",
    shell:
        "python -c 'import sys; from lens.tracking import ensure_experiment, tracking_uri; "
        'print(ensure_experiment(tracking_uri(sys.argv[1] or None, sys.argv[2]), sys.argv[3]))\' '
        "{params.uri} {params.runs} {params.name} > {output} 2> {log}"


rule train:
    """GRPO or a LENS variant with TRL's GRPOTrainer (lens.train).

    A job restarted after a crash resumes from its last checkpoint; a job rerun because its inputs
    changed (config, starting model, data) starts over: checkpoints made from other inputs are removed.
    """
    conda:
        CONDA_ENV
    input:
        unpack(train_inputs),
    output:
        # Only the completion marker: Snakemake deletes a job's outputs before it runs, and a resumed
        # job still needs train_metrics.parquet's earlier rows (lens.train rewrites it every step).
        done=f"{R}/runs/{{model}}/{{algo}}/seed{{seed}}/done",
    params:
        run=parent_of("done"),
        inputs=lambda wc, input: " ".join(shlex.quote(str(f)) for f in [input.config, *input.start, *input.data]),
    log:
        f"{R}/logs/train/{{model}}/{{algo}}/seed{{seed}}.log",
    threads: lambda wc: threads_of(RUNS[(wc.model, wc.algo, int(wc.seed))].training.torch_threads)
    resources:
        gpu=lambda wc: gpus(wc.model),
    shell:
        """
        stamp={params.run}/checkpoints/inputs.sha256
        if ! sha256sum {params.inputs} | cmp -s - "$stamp"; then
            rm -rf {params.run}/checkpoints {params.run}/mlflow_run_id {params.run}/train_metrics.parquet
            mkdir -p {params.run}/checkpoints
            sha256sum {params.inputs} > "$stamp"
        fi
        if [ "{resources.gpu}" -gt 1 ]; then
            launch="accelerate launch --num_processes {resources.gpu} --config_file config/accelerate/zero3.yaml"
        else
            launch=python
        fi
        $launch -m lens.train --config {input.config} --out {params.run} > {log} 2>&1
        """
