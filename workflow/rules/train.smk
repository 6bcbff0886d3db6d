# RL training: one job per model x algorithm x seed, all logging to one MLflow store per results folder.


rule mlflow_experiment:
    """Create the MLflow experiment once, before the training jobs fan out: parallel jobs creating
    it in one SQLite file race ("database is locked")."""
    conda:
        CONDA_ENV
    output:
        f"{R}/mlflow_experiment_id",
    params:
        name=shlex.quote(CFG.tracking.experiment),
    log:
        f"{R}/logs/mlflow_experiment.log",
    # Without a URI, lens.tracking keeps the SQLite store in the folder that holds runs/: results_dir.
    shell:
        f"python -m lens.tracking ensure-experiment --results-dir {R} --experiment {{params.name}} "
        f"{TRACKING_URI_ARGS} --id-file {{output}} > {{log}} 2>&1"


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
        done=f"{RUN}/{layout.DONE_FILE}",
    params:
        run=parent_of("done"),
        # `python`; `accelerate launch --num_processes N` on N > 1 GPUs; torchrun for N > 1 CPU processes
        launch=train_launcher,
        engine=train_engine_args,
    log:
        f"{R}/logs/train/{{model}}/{{algo}}/seed{{seed}}.log",
    threads: lambda wc: PLAN.train_threads(*run_of(wc))
    # lens.devices gives the job that many GPUs of its own (CUDA_VISIBLE_DEVICES): Snakemake only counts them.
    resources:
        gpu=lambda wc: PLAN.gpus(wc.model),
    # Training jobs are the longest: started before any evaluation, they leave no core idle at the end
    # (the embedded DAG's last training job otherwise started after evaluations and ran alone).
    priority: 10
    # The file names are lens.layout's; the command's text is what it was when they were spelled here, so
    # Snakemake's code check (it compares this text) reruns no finished training job.
    shell:
        f"""
        stamp={{params.run}}/{layout.CHECKPOINTS}/{layout.INPUTS_STAMP}
        if ! sha256sum {{input.config}} {{input.start}} {{input.data}} | cmp -s - "$stamp"; then
            rm -rf {{params.run}}/{layout.CHECKPOINTS} {{params.run}}/{layout.RUN_ID_FILE} {{params.run}}/{layout.METRICS_FILE} \
                {{params.run}}/{layout.ROLLOUT_PARTS} {{params.run}}/{layout.ROLLOUTS_FILE}
            mkdir -p {{params.run}}/{layout.CHECKPOINTS}
            sha256sum {{input.config}} {{input.start}} {{input.data}} > "$stamp"
        fi
        python -m lens.devices --gpus {{resources.gpu}} -- \
            {{params.launch}} -m lens.train --config {{input.config}} --out {{params.run}} {{params.engine}} > {{log}} 2>&1
        """
