# Data and starting checkpoints: the embedded synthetic benchmark and the tiny model's warm-up.
# Both exist only when the config has the `synthetic` / `warmup` sections (config/config.yaml);
# the paper config reads MATH and DAPO directly and starts from hub models.


rule synthetic:
    """Levelled arithmetic benchmark: train (with worked solutions), rl (the RL prompt mix), test."""
    conda:
        CONDA_ENV
    input:
        # Only the `synthetic` section: editing any other part of the config never regenerates data.
        section=f"{SYNTH_DIR}.yaml",
    output:
        expand(f"{SYNTH_DIR}/{{split}}.jsonl", split=["train", "rl", "test"]),
    log:
        f"{R}/logs/synthetic.log",
    shell:
        f"python -m lens.synthetic --config {{input.section}} --out {SYNTH_DIR} > {{log}} 2>&1"


rule warmup:
    """Tokenizer + tiny model built from the config, then supervised warm-up on worked solutions."""
    conda:
        CONDA_ENV
    input:
        section=f"{R}/models/{{model}}/warmup.yaml",
        train=f"{SYNTH_DIR}/train.jsonl",
    output:
        [f"{R}/models/{{model}}/warmup/{name}" for name in WARMUP_FILES],
    params:
        out=parent_of(0),
    log:
        f"{R}/logs/warmup/{{model}}.log",
    # The job runs warmup.torch_threads threads whatever --cores allows (a setting of the result,
    # read from the section file); `threads` only reserves the cores.
    threads: (CFG.warmup.torch_threads if CFG.warmup else None) or 1
    shell:
        "python -m lens.warmup --config {input.section} --train {input.train} --out {params.out} > {log} 2>&1"


rule standin:
    """A tiny model standing in for a hub model (config/paper-rehearsal.yaml): the model family's
    tokenizer conventions, a tokenizer trained on the training problems, random weights."""
    conda:
        CONDA_ENV
    input:
        section=f"{R}/models/{{model}}/standin.yaml",
    output:
        [f"{R}/models/{{model}}/standin/{name}" for name in STANDIN_FILES],
    params:
        out=parent_of(0),
    log:
        f"{R}/logs/standin/{{model}}.log",
    shell:
        "python -m lens.tiny --config {input.section} --out {params.out} > {log} 2>&1"
