localrules:
    collect_summary,
    job_resources,
    tables,
    figures_results,
    partition_heatmap,
    fleet,


# ----------------------------------------------------------------------------------------------
# Collect every run's metric files into two long tables (the cache that tables and figures use).
# Cheap and deterministic: in a fresh clone it may rerun from the committed CSVs; it never trains.
rule collect_summary:
    input:
        report_input_files(),
    output:
        runs=f"{R}/summary/runs.csv",
        history=f"{R}/summary/history.csv",
        missing=f"{R}/summary/missing_runs.txt",
        cost=f"{R}/summary/cost.csv",
        clock=f"{R}/summary/clock.csv",
    log:
        f"{R}/logs/report/collect.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        expected=expected_runs_argument(),
    shell:
        "heterofl collect {params.expected}"
        ' --out "$(dirname {output.runs:q})" --log {log:q} 2>> {log:q}'


# ----------------------------------------------------------------------------------------------
# Paper-style tables (CSV, Markdown, LaTeX, HTML for the report) from the cached summary, after the figures:
# tables/index.md lists every table and figure written.
rule tables:
    input:
        runs=rules.collect_summary.output.runs,
        history=rules.collect_summary.output.history,
        cost=rules.collect_summary.output.cost,  # read beside runs.csv: the cost tables
        figures=f"{R}/figures/results",
        heatmaps=heatmap_files(),
    output:
        report(
            directory(f"{R}/tables"),
            patterns=["{name}.html"],
            caption="../report/tables.rst",
            category="Tables",
            subcategory=report_kind,
        ),
    log:
        f"{R}/logs/report/tables.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        metric=config["report_metric"],
        captions=REPORT_CAPTIONS,  # read by ../report/tables.rst
        figures=lambda wildcards, input: " ".join(
            f"--figures {shlex.quote(path)}"
            for path in [input.figures, *input.heatmaps]
        ),
    shell:
        "heterofl tables --runs-csv {input.runs:q} --metric {params.metric} {params.figures}"
        " --out {output:q} --log {log:q} 2>> {log:q}"


# ----------------------------------------------------------------------------------------------
# Figures (PDF and PNG) from the cached summary.
rule figures_results:
    input:
        runs=rules.collect_summary.output.runs,
        history=rules.collect_summary.output.history,
        cost=rules.collect_summary.output.cost,
    output:
        report(
            directory(f"{R}/figures/results"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
            subcategory=report_kind,
        ),
    log:
        f"{R}/logs/report/figures.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        metric=config["report_metric"],
        captions=REPORT_CAPTIONS,  # read by ../report/figures.rst
    shell:
        "heterofl figures --runs-csv {input.runs:q} --history-csv {input.history:q} --cost-csv {input.cost:q}"
        " --metric {params.metric} --out {output:q} --log {log:q} 2>> {log:q}"


# ----------------------------------------------------------------------------------------------
# Time and memory of the training and evaluation jobs this root ran (their benchmark files), per step, in the
# report beside the results. Part of the default target only: `figures` trains nothing, so it has none.
rule job_resources:
    input:
        all_run_files(),
    output:
        jobs=f"{R}/summary/jobs.csv",
        summary=report(
            f"{R}/summary/jobs.md",
            caption="../report/jobs.rst",
            category="Resources",
        ),
    log:
        f"{R}/logs/report/jobs.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        benchmarks=f"{R}/benchmarks",
    shell:
        "heterofl jobs --benchmarks {params.benchmarks:q} --out {output.jobs:q} --md {output.summary:q}"
        " > {log:q} 2>&1"
