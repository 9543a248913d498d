# ----------------------------------------------------------------------------------------------
# One federated training run per configuration, method and seed (folder: RUN_FOLDER, results.RUN_KEY_PATTERN).
# Resumes from its checkpoint by itself. After it, one line of the grid's progress with an estimate of the time left.
rule train_run:
    input:
        partition=partition_of,
        fleet=fleet_of,
    output:
        history=f"{RUN_FOLDER}/history.csv",
        model=f"{RUN_FOLDER}/model.pt",
        config=f"{RUN_FOLDER}/config.yaml",
    log:
        TRAIN_LOG,
    benchmark:
        TRAIN_BENCHMARK
    conda:
        "../envs/heterofl.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=config["resources"]["train"]["runtime"],
        gpu=config["resources"]["train"]["gpu"],
    params:
        control=control_of,
        settings=settings_of,
        fleet=fleet_argument,
        device=config["device"],
        plan=PLAN,
        benchmarks=f"{R}/benchmarks",
        parallel=PARALLEL_TRAIN,
    shell:
        "heterofl train --dataset {wildcards.dataset} --control {params.control}"
        " --seed {wildcards.seed} {params.settings} --partition {input.partition:q} {params.fleet}"
        ' --out "$(dirname {output.history:q})" --threads {threads} --device {params.device}'
        " --quiet --log {log:q} 2>> {log:q}"
        " && (heterofl progress --plan {params.plan:q} --benchmarks {params.benchmarks:q}"
        " --parallel {params.parallel} 2>> {log:q} || true)"


# ----------------------------------------------------------------------------------------------
# The final model evaluated at every rate (fresh static BN each), with best/last-k from history.
# history.csv and config.yaml are ancient(): in a fresh clone their checkout times must not make a cached
# run look stale (that would retrain it, since model.pt is not committed). model.pt is not ancient, so a
# retrained run is re-evaluated (Snakemake does not propagate reruns through inputs that are all ancient).
rule evaluate:
    input:
        history=ancient(rules.train_run.output.history),
        model=rules.train_run.output.model,
        config=ancient(rules.train_run.output.config),
        partition=ancient_partition_of,
    output:
        f"{RUN_FOLDER}/eval.csv",
    log:
        EVALUATE_LOG,
    benchmark:
        EVALUATE_BENCHMARK
    conda:
        "../envs/heterofl.yaml"
    threads: config["resources"]["train"]["threads"]
    resources:
        mem_mb=config["resources"]["train"]["mem_mb"],
        runtime=30,
    params:
        device=config["device"],
    shell:
        'heterofl evaluate --run "$(dirname {output:q})" --partition {input.partition:q}'
        " --device {params.device} --threads {threads} --log {log:q} 2>> {log:q}"
