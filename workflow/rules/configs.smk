# The resolved configs: one file per job (common.smk: CONFIG_TEXTS), written by a job rather than
# when the workflow is parsed, so `snakemake -n` writes nothing.


localrules:
    config_file,


rule config_file:
    """One resolved config: a run's or a start's config.yaml, a built model's or the synthetic
    benchmark's section file, or the merged config (results/config.yaml). Its text is this job's
    `params`, so Snakemake reruns the job when the text changes, and after it only the jobs that read
    this file (editing alpha retrains the LENS-family runs and nothing else). No input: an input
    file would put every job below this one under Snakemake's rerun decision for this job."""
    conda:
        CONDA_ENV
    output:
        f"{R}/{{path}}",
    wildcard_constraints:
        path="|".join(re.escape(path[len(R) + 1 :]) for path in CONFIG_TEXTS),
    params:
        text=config_text,
    log:
        f"{R}/logs/configs/{{path}}.log",
    # A shell job: a `run:` block is executed by a new Snakemake process that parses the workflow again.
    # Editing this command (Snakemake's `code` trigger) reruns every config_file job, and so every job
    # downstream of a rewritten file: leave it as it is.
    shell:
        "printf '%s' {params.text:q} > {output} 2> {log}"
