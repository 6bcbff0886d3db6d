# Evaluation: sample n answers per problem at the starting model (once per model x seed) and at
# every `evaluation.every` rollout steps of each run; grade them; attach the numbers to the run's
# MLflow run. Output layout: lens.layout.EVAL below a run or a start, holding SAMPLES_FILE and SUMMARY_FILE.
# Jobs that ask for a GPU run under lens.devices, which exports the device the job owns (CUDA_VISIBLE_DEVICES).


rule evaluate_start:
    """The starting model (the warm-up checkpoint or the hub model) is the same for every algorithm:
    evaluate it once per model x seed and benchmark."""
    conda:
        CONDA_ENV
    input:
        unpack(lambda wc: PLAN.start_eval_inputs(wc.model, int(wc.seed), wc.benchmark)),
    output:
        samples=f"{START_EVAL0}/{layout.SAMPLES_FILE}",
        summary=f"{START_EVAL0}/{layout.SUMMARY_FILE}",
    params:
        out=parent_of("samples"),
        checkpoint=lambda wc: PLAN.start_config(wc.model, int(wc.seed)).model.path,
    log:
        f"{R}/logs/evaluate/{{model}}/start/seed{{seed}}/{{benchmark}}.log",
    threads: lambda wc: PLAN.eval_threads(wc.model)
    resources:
        gpu=lambda wc: min(PLAN.gpus(wc.model), 1),
    shell:
        "python -m lens.devices --gpus {resources.gpu} -- python -m lens.evaluate --replace-stale "
        "--config {input.config} --out {params.out} "
        "--checkpoint {params.checkpoint} "
        "--benchmark {wildcards.benchmark} > {log} 2>&1"


rule share_start:
    """Step 0 of every run is the shared start: its samples are copied into the run directory."""
    conda:
        CONDA_ENV
    input:
        samples=f"{START_EVAL0}/{layout.SAMPLES_FILE}",
        summary=f"{START_EVAL0}/{layout.SUMMARY_FILE}",
    output:
        samples=f"{RUN_EVAL0}/{layout.SAMPLES_FILE}",
        summary=f"{RUN_EVAL0}/{layout.SUMMARY_FILE}",
    log:
        f"{R}/logs/evaluate/{{model}}/{{algo}}/seed{{seed}}/{{benchmark}}/step0.log",
    shell:
        "(cp {input.samples} {output.samples} && cp {input.summary} {output.summary}) > {log} 2>&1"


rule evaluate:
    """A checkpoint of rollout step S > 0 of one run."""
    conda:
        CONDA_ENV
    input:
        unpack(lambda wc: PLAN.eval_inputs(*run_of(wc), wc.benchmark)),
    output:
        samples=f"{RUN_EVAL}/{layout.SAMPLES_FILE}",
        summary=f"{RUN_EVAL}/{layout.SUMMARY_FILE}",
    wildcard_constraints:
        step=r"[1-9][0-9]*",
    params:
        out=parent_of("samples"),
        checkpoint=lambda wc: PLAN.checkpoint(*run_of(wc), int(wc.step)),
        n_samples=lambda wc: RUNS[run_of(wc)].n_samples_at(int(wc.step)),
    log:
        f"{R}/logs/evaluate/{{model}}/{{algo}}/seed{{seed}}/{{benchmark}}/step{{step}}.log",
    threads: lambda wc: PLAN.eval_threads(wc.model)
    resources:
        gpu=lambda wc: min(PLAN.gpus(wc.model), 1),
    shell:
        "python -m lens.devices --gpus {resources.gpu} -- python -m lens.evaluate --replace-stale "
        "--config {input.config} --out {params.out} "
        "--checkpoint {params.checkpoint} "
        "--benchmark {wildcards.benchmark} --n-samples {params.n_samples} > {log} 2>&1"


# The two rules below make several of `evaluate`'s files in one job where the plan allows (lens.plan), and
# take precedence over it for those files. Where it does not, their output lists are empty: they never run.
FINAL_STEP, FINAL_BENCHMARKS = PLAN.final_evaluations() or (None, [])
TINY_EVAL_STEPS = PLAN.tiny_eval_steps() or []


rule evaluate_final:
    """The last checkpoint of one run on every benchmark of the last step (MATH-500 and the MATH
    test in the paper), in one process: the model is loaded (and vLLM started) once."""
    conda:
        CONDA_ENV
    input:
        unpack(lambda wc: PLAN.final_eval_inputs(*run_of(wc))),
    output:
        samples=[f"{layout.eval_dir(RUN, b, FINAL_STEP)}/{layout.SAMPLES_FILE}" for b in FINAL_BENCHMARKS],
        summaries=[f"{layout.eval_dir(RUN, b, FINAL_STEP)}/{layout.SUMMARY_FILE}" for b in FINAL_BENCHMARKS],
    wildcard_constraints:
        model="|".join(re.escape(m) for m in MODELS if m not in TINY_MODELS),
    params:
        checkpoint=lambda wc: PLAN.checkpoint(*run_of(wc)),
        outs=parents_of("samples"),
    log:
        f"{R}/logs/evaluate/{{model}}/{{algo}}/seed{{seed}}/step{FINAL_STEP}.log",
    threads: lambda wc: PLAN.eval_threads(wc.model)
    resources:
        gpu=lambda wc: min(PLAN.gpus(wc.model), 1),
    shell:
        "python -m lens.devices --gpus {resources.gpu} -- python -m lens.evaluate --replace-stale "
        "--config {input.config} --checkpoint {params.checkpoint} "
        f"--benchmark {' '.join(FINAL_BENCHMARKS)} --out {{params.outs}} > {{log}} 2>&1"


rule evaluate_run:
    """Every checkpoint after step 0 of one run of a tiny model, in one process (lens.evaluate with
    several --checkpoint): a job's start-up costs more than evaluating a tiny model once."""
    conda:
        CONDA_ENV
    input:
        unpack(lambda wc: PLAN.eval_inputs(*run_of(wc), wc.benchmark)),
    output:
        samples=[f"{layout.eval_dir(RUN, '{benchmark}', s)}/{layout.SAMPLES_FILE}" for s in TINY_EVAL_STEPS],
        summaries=[f"{layout.eval_dir(RUN, '{benchmark}', s)}/{layout.SUMMARY_FILE}" for s in TINY_EVAL_STEPS],
    wildcard_constraints:
        model="|".join(re.escape(m) for m in TINY_MODELS),
        benchmark="|".join(re.escape(ds.id) for ds in CFG.evaluation.benchmarks),
    params:
        args=run_eval_args,
    log:
        f"{R}/logs/evaluate/{{model}}/{{algo}}/seed{{seed}}/{{benchmark}}/steps.log",
    threads: lambda wc: PLAN.eval_threads(wc.model)
    shell:
        "python -m lens.evaluate --replace-stale --config {input.config} --benchmark {wildcards.benchmark} "
        "--checkpoint {params.args[checkpoints]} --out {params.args[outs]} "
        "--n-samples {params.args[n_samples]} > {log} 2>&1"


ruleorder: evaluate_final > evaluate
ruleorder: evaluate_run > evaluate


rule log_evals:
    """Attach a run's evaluation summaries to its MLflow run (lens.tracking.log_eval) in one process:
    the training job made the run, and importing MLflow costs seconds per process."""
    conda:
        CONDA_ENV
    input:
        done=f"{RUN}/{layout.DONE_FILE}",
        summaries=run_eval_summaries,
    output:
        f"{RUN}/{layout.EVALS_LOGGED}",
    params:
        evals=lambda wc: " ".join(f"--eval {b}:{s}" for b, s in PLAN.run_evals(*run_of(wc))),
    log:
        f"{R}/logs/evaluate/{{model}}/{{algo}}/seed{{seed}}/mlflow.log",
    shell:
        "python -m lens.tracking log-evals --run-dir $(dirname {input.done}) {params.evals} > {log} 2>&1 "
        "&& touch {output}"
