# RL training: one job per model x algorithm x seed, all logging to one MLflow store per results folder.


rule mlflow_experiment:
    """Create the MLflow experiment once, before the training jobs fan out: parallel jobs creating
    it in one SQLite file race ("database is locked")."""
    conda:
        CONDA_ENV
    output:
        f"{R}/mlflow_experiment_id",
    params:
        uri=lambda wc: f"--uri {tracking_uri_arg()}" if CFG.tracking.uri else "",
        name=shlex.quote(CFG.tracking.experiment),
        # Without a URI, lens.tracking keeps the SQLite store in the folder that holds runs/: results_dir.
        results=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/mlflow_experiment.log",
    shell:
        "python -m lens.tracking ensure-experiment --results-dir {params.results} --experiment {params.name} "
        "{params.uri} --id-file {output} > {log} 2>&1"


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
        # `python`; `accelerate launch --num_processes N` on N > 1 GPUs; torchrun for N > 1 CPU processes
        launch=lambda wc: train_launcher(wc.model),
        engine=lambda wc: train_engine_args(wc.model),
    log:
        f"{R}/logs/train/{{model}}/{{algo}}/seed{{seed}}.log",
    threads: lambda wc: train_threads(wc.model, RUNS[(wc.model, wc.algo, int(wc.seed))])
    resources:
        gpu=lambda wc: train_gpus(wc.model),
    # Training jobs are the longest: started before any evaluation, they leave no core idle at the end
    # (the embedded DAG's last training job otherwise started after evaluations and ran alone).
    priority: 10
    shell:
        """
        stamp={params.run}/checkpoints/inputs.sha256
        if ! sha256sum {params.inputs} | cmp -s - "$stamp"; then
            rm -rf {params.run}/checkpoints {params.run}/mlflow_run_id {params.run}/train_metrics.parquet \
                {params.run}/rollouts {params.run}/rollouts.parquet
            mkdir -p {params.run}/checkpoints
            sha256sum {params.inputs} > "$stamp"
        fi
        {params.launch} -m lens.train --config {input.config} --out {params.run} {params.engine} > {log} 2>&1
        """
