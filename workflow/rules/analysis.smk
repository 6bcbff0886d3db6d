# Analysis: tidy tables from the run directories, then one job per figure and per table, then the
# report; each in three scopes (lens.layout): the main target's (results/{tidy,figures,tables}/),
# `ablations`' and `sweeps`' (their ablations/ and sweeps/ subfolders). Figure settings reach only
# these jobs, as command-line options (analysis/jobs.py), so changing one reruns only the
# figures and tables (and the report); the scripts are inputs, so editing one reruns what it draws.

from analysis import code_files


rule collect:
    """Tidy tables (results/README.md) of one scope: the training metrics, graded samples and
    confident mistakes of its runs (main: `algorithms`; ablations/: and `ablation_algorithms`, on
    `ablation_models` x `ablation_seeds`; sweeps/: GRPO and the sweep arms)."""
    conda:
        CONDA_ENV
    input:
        collect_inputs,
        code=code_files("collect"),
    output:
        train=f"{R}/tidy/{{scope}}{layout.TRAIN_FILE}",
        evals=f"{R}/tidy/{{scope}}{layout.EVAL_FILE}",
        negatives=f"{R}/tidy/{{scope}}{layout.NEGATIVE_FILE}",
        pairing=f"{R}/tidy/{{scope}}{layout.PAIRING_FILE}",
    params:
        sweeps=lambda wc: "--sweeps" if wc.scope == "sweeps/" else "",  # read the sweep runs' folders too
        only=lambda wc: PLAN.collect_args(wc.scope),
    log:
        f"{R}/logs/analysis/{{scope}}collect.log",
    shell:
        f"python -m analysis.collect --runs {R}/runs --out {R}/tidy/{{wildcards.scope}} {{params.sweeps}} "
        "{params.only} > {log} 2>&1"


rule figure:
    """One figure of one scope: analysis/{name}.py draws it (every image format, and the CSV of the
    numbers drawn) from that scope's tidy tables. Rule table is this rule with a table's outputs."""
    conda:
        CONDA_ENV
    input:
        rules.collect.output,
        code=lambda wc: code_files(wc.name),
    output:
        [f"{R}/figures/{{scope}}{{name}}.{ext}" for ext in [*CFG.figures.formats, "csv"]],
    wildcard_constraints:
        name="|".join(name for names in SCOPE_FIGURES.values() for name in names),
    params:
        out=lambda wc, output: f"{Path(output[0]).parent}/",  # figures/ or tables/, and the scope
        args=lambda wc: ANALYSIS_ARGS[wc.name],
    log:
        f"{R}/logs/analysis/{{scope}}{{name}}.log",
    shell:
        f"python -m analysis.{{wildcards.name}} --tidy {R}/tidy/{{wildcards.scope}} --out {{params.out}} "
        "{params.args} > {log} 2>&1"


use rule figure as table with:
    output:
        [f"{R}/tables/{{scope}}{{name}}.{ext}" for ext in analysis_jobs.TABLE_FORMATS],
    wildcard_constraints:
        name="|".join(name for names in SCOPE_TABLES.values() for name in names),


rule report:
    """results/REPORT.md: the verdict with the figures and tables it rests on, and a leaderboard or
    sensitivity section when `ablations` or `sweeps` is built or was (common.smk: report_sections)."""
    conda:
        CONDA_ENV
    input:
        tidy_files(),
        figure_files(),
        table_files(),
        report_sections,
        config=MERGED_CONFIG,
        code=code_files("report"),
    output:
        f"{R}/REPORT.md",
    log:
        f"{R}/logs/analysis/report.log",
    shell:
        f"python -m analysis.report --tidy {R}/tidy --figures {R}/figures --tables {R}/tables "
        f"--config {{input.config}} {ANALYSIS_ARGS['report']} --out {{output}} > {{log}} 2>&1"
