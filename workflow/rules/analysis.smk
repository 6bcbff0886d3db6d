# Analysis: tidy tables from the run directories, then one job per figure and per table, then the
# report. Figure settings (the `figures:` section) reach only these jobs, as command-line options
# in `params` (FIGURE_ARGS, TABLE_ARGS in common.smk), so changing one reruns only the figures and
# tables (and the report built on them).


rule collect:
    """Tidy tables (results/README.md): every run's training metrics and graded samples."""
    conda:
        CONDA_ENV
    input:
        collect_inputs(ALGOS),
        code=analysis_code("collect"),
    output:
        train=f"{R}/tidy/train_metrics.parquet",
        evals=f"{R}/tidy/eval_samples.parquet",
        negatives=f"{R}/tidy/negative_samples.parquet",
    params:
        runs=lambda wc, output: f"{Path(output.train).parent.parent}/runs",
        out=parent_of("train"),
    log:
        f"{R}/logs/analysis/collect.log",
    shell:
        "python -m analysis.collect --runs {params.runs} --out {params.out} > {log} 2>&1"


rule figure:
    conda:
        CONDA_ENV
    input:
        rules.collect.output,
        code=lambda wc: analysis_code(wc.figure),
    output:
        [f"{R}/figures/{{figure}}.{ext}" for ext in [*FIG.formats, "csv"]],
    wildcard_constraints:
        figure="|".join(FIGURE_ARGS),
    params:
        args=lambda wc: FIGURE_ARGS[wc.figure],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/{{figure}}.log",
    shell:
        "python -m analysis.{wildcards.figure} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"


rule table:
    conda:
        CONDA_ENV
    input:
        rules.collect.output,
        code=lambda wc: analysis_code(wc.table),
    output:
        [f"{R}/tables/{{table}}.{ext}" for ext in ("md", "tex", "csv")],
    wildcard_constraints:
        table="|".join(TABLE_ARGS),
    params:
        args=lambda wc: TABLE_ARGS[wc.table],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/{{table}}.log",
    shell:
        "python -m analysis.{wildcards.table} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"


rule report:
    """results/REPORT.md: the verdict with the figures and tables it rests on."""
    conda:
        CONDA_ENV
    input:
        tidy=rules.collect.output,
        figures=figure_files(),
        tables=table_files(MAIN_TABLES),
        ablations=ablation_files() if ABLATIONS_REQUESTED else [],
        sweeps=sweep_files() if SWEEPS_REQUESTED else [],
        code=analysis_code("report"),
    output:
        f"{R}/REPORT.md",
    params:
        tidy=lambda wc, input: str(Path(input.tidy[0]).parent),
        figures=lambda wc, input: str(Path(input.figures[0]).parent),
        tables=lambda wc, input: str(Path(input.tables[0]).parent),
        config=MERGED_CONFIG,
    log:
        f"{R}/logs/analysis/report.log",
    shell:
        "python -m analysis.report --tidy {params.tidy} --figures {params.figures} --tables {params.tables} "
        f"--config {{params.config}} {_BOOT} --out {{output}} > {{log}} 2>&1"


rule collect_ablations:
    """Tidy tables over the main and the ablation runs (target `ablations`)."""
    conda:
        CONDA_ENV
    input:
        collect_inputs(ALGOS + ABLATION_ALGOS),
        code=analysis_code("collect"),
    output:
        train=f"{R}/tidy/ablations/train_metrics.parquet",
        evals=f"{R}/tidy/ablations/eval_samples.parquet",
    params:
        runs=lambda wc, output: f"{Path(output.train).parent.parent.parent}/runs",
        out=parent_of("train"),
    log:
        f"{R}/logs/analysis/collect_ablations.log",
    shell:
        "python -m analysis.collect --runs {params.runs} --out {params.out} > {log} 2>&1"


rule ablation_table:
    """Table 2 layout and the leaderboard, over every arm of `algorithms` and `ablation_algorithms`."""
    conda:
        CONDA_ENV
    input:
        rules.collect_ablations.output,
        code=lambda wc: analysis_code(wc.table),
    output:
        [f"{R}/tables/ablations/{{table}}.{ext}" for ext in ("md", "tex", "csv")],
    wildcard_constraints:
        table="|".join(ABLATION_TABLE_ARGS),
    params:
        args=lambda wc: ABLATION_TABLE_ARGS[wc.table],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/ablations_{{table}}.log",
    shell:
        "python -m analysis.{wildcards.table} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"


rule ablation_figure:
    """The leaderboard figure over every arm trained (target `ablations`)."""
    conda:
        CONDA_ENV
    input:
        rules.collect_ablations.output,
        code=lambda wc: analysis_code(wc.figure),
    output:
        [f"{R}/figures/ablations/{{figure}}.{ext}" for ext in [*FIG.formats, "csv"]],
    wildcard_constraints:
        figure="|".join(ABLATION_FIGURE_ARGS),
    params:
        args=lambda wc: ABLATION_FIGURE_ARGS[wc.figure],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/ablations_{{figure}}.log",
    shell:
        "python -m analysis.{wildcards.figure} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"


rule collect_sweeps:
    """Tidy tables over the main and the sweep runs (target `sweeps`); a sweep run's algo is its arm."""
    conda:
        CONDA_ENV
    input:
        collect_inputs(["grpo"] + SWEEP_ARMS),
        code=analysis_code("collect"),
    output:
        train=f"{R}/tidy/sweeps/train_metrics.parquet",
        evals=f"{R}/tidy/sweeps/eval_samples.parquet",
    params:
        runs=lambda wc, output: f"{Path(output.train).parent.parent.parent}/runs",
        out=parent_of("train"),
    log:
        f"{R}/logs/analysis/collect_sweeps.log",
    shell:
        "python -m analysis.collect --runs {params.runs} --out {params.out} --sweeps > {log} 2>&1"


rule sweep_table:
    """The sensitivity table: every swept value against the main GRPO runs (target `sweeps`)."""
    conda:
        CONDA_ENV
    input:
        rules.collect_sweeps.output,
        code=lambda wc: analysis_code(wc.table),
    output:
        [f"{R}/tables/sweeps/{{table}}.{ext}" for ext in ("md", "tex", "csv")],
    wildcard_constraints:
        table="|".join(SWEEP_TABLE_ARGS),
    params:
        args=lambda wc: SWEEP_TABLE_ARGS[wc.table],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/sweeps_{{table}}.log",
    shell:
        "python -m analysis.{wildcards.table} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"


rule sweep_figure:
    """The sensitivity figure (target `sweeps`)."""
    conda:
        CONDA_ENV
    input:
        rules.collect_sweeps.output,
        code=lambda wc: analysis_code(wc.figure),
    output:
        [f"{R}/figures/sweeps/{{figure}}.{ext}" for ext in [*FIG.formats, "csv"]],
    wildcard_constraints:
        figure="|".join(SWEEP_FIGURE_ARGS),
    params:
        args=lambda wc: SWEEP_FIGURE_ARGS[wc.figure],
        tidy=lambda wc, input: str(Path(input[0]).parent),
        out=lambda wc, output: str(Path(output[0]).parent),
    log:
        f"{R}/logs/analysis/sweeps_{{figure}}.log",
    shell:
        "python -m analysis.{wildcards.figure} --tidy {params.tidy} --out {params.out} {params.args} > {log} 2>&1"
