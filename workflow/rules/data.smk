# ----------------------------------------------------------------------------------------------
# Split a dataset across clients; one partition per (dataset, split, clients, seed).
rule partition:
    output:
        partition=f"{R}/partitions/{{dataset}}/{{split}}/users{{users}}_seed{{seed}}.json",
        stats=f"{R}/partitions/{{dataset}}/{{split}}/users{{users}}_seed{{seed}}.stats.csv",
    log:
        f"{R}/logs/partition/{{dataset}}/{{split}}/users{{users}}_seed{{seed}}.log",
    conda:
        "../envs/heterofl.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        variant=config["non_iid_variant"],
        data_root=config["data_root"],
    shell:
        "heterofl partition --dataset {wildcards.dataset} --split {wildcards.split}"
        " --num-users {wildcards.users} --seed {wildcards.seed} --variant {params.variant}"
        " --data-root {params.data_root:q} --out {output.partition:q} --stats {output.stats:q}"
        " --log {log:q} 2>> {log:q}"


# ----------------------------------------------------------------------------------------------
# Clients x labels heatmap, drawn from the statistics CSV alone (regenerates from cached results).
rule partition_heatmap:
    input:
        stats=lambda wc: partition_stats(
            f"{wc.dataset}/{wc.split}/users{wc.users}_seed{wc.seed}"
        ),
    output:
        pdf=f"{R}/figures/partitions/{{dataset}}_{{split}}_users{{users}}_seed{{seed}}.pdf",
        png=report(
            f"{R}/figures/partitions/{{dataset}}_{{split}}_users{{users}}_seed{{seed}}.png",
            caption="../report/partition.rst",
            category="Partitions",
        ),
    log:
        f"{R}/logs/heatmap/{{dataset}}_{{split}}_users{{users}}_seed{{seed}}.log",
    conda:
        "../envs/heterofl.yaml"
    params:
        title=lambda wc: f"{wc.dataset} {wc.split} ({wc.users} clients, seed {wc.seed})",
        captions=REPORT_CAPTIONS,  # read by ../report/partition.rst
    shell:
        "heterofl heatmap --stats {input.stats:q} --out {output.pdf:q} --out {output.png:q}"
        " --title {params.title:q} 2> {log:q}"


# ----------------------------------------------------------------------------------------------
# Which device each client has, for runs on the simulated clock (settings: fleet); one file per
# (fleet, clients, seed), from the device table (config key devices).
rule fleet:
    input:
        devices=config["devices"],
    output:
        f"{R}/fleets/{{fleet}}/users{{users}}_seed{{seed}}.json",
    log:
        f"{R}/logs/fleet/{{fleet}}/users{{users}}_seed{{seed}}.log",
    conda:
        "../envs/heterofl.yaml"
    shell:
        "heterofl fleet --devices {input.devices:q} --fleet {wildcards.fleet} --num-users {wildcards.users}"
        " --seed {wildcards.seed} --out {output:q} > {log:q} 2>&1"
