localrules:
    aggregate,
    tables,
    figures_results,
    partition_heatmap,


# ----------------------------------------------------------------------------------------------
# Collect every run's metric files into two long tables (the cache that tables and figures use).
# Cheap and deterministic: in a fresh clone it may rerun from the committed CSVs; it never trains.
rule aggregate:
    input:
        report_input_files(),
    output:
        runs=f"{R}/summary/runs.csv",
        history=f"{R}/summary/history.csv",
        missing=f"{R}/summary/missing_runs.txt",
    log:
        f"{R}/logs/report/aggregate.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        expected=expected_runs_argument(),
    shell:
        "heterofl aggregate {params.expected}"
        " --out $(dirname {output.runs}) --log {log} 2>> {log}"


# ----------------------------------------------------------------------------------------------
# Paper-style tables (CSV, Markdown, LaTeX) from the cached summary.
rule tables:
    input:
        runs=rules.aggregate.output.runs,
        history=rules.aggregate.output.history,
    output:
        directory(f"{R}/tables"),
    log:
        f"{R}/logs/report/tables.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        metric=config["report_metric"],
    shell:
        "heterofl tables --runs-csv {input.runs} --metric {params.metric} --out {output} --log {log} 2>> {log}"


# ----------------------------------------------------------------------------------------------
# Figures (PDF and PNG) from the cached summary.
rule figures_results:
    input:
        runs=rules.aggregate.output.runs,
        history=rules.aggregate.output.history,
    output:
        report(
            directory(f"{R}/figures/results"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Results",
        ),
    log:
        f"{R}/logs/report/figures.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        metric=config["report_metric"],
    shell:
        "heterofl figures --runs-csv {input.runs} --history-csv {input.history}"
        " --metric {params.metric} --out {output} --log {log} 2>> {log}"
