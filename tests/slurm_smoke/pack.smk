# Toy workflow for the packing tests (tests/test_slurm_smoke.py): four "training runs" that each ask for a
# GPU and record the SLURM job, the GPU they saw and when they ran. config fail=N makes run N fail.


localrules:
    all,


rule all:
    input:
        expand("out/run{i}.txt", i=range(4)),


rule train_run:
    output:
        "out/run{i}.txt",
    log:
        "logs/run{i}.log",
    threads: 1
    resources:
        gpu=1,
        mem_mb=200,
        runtime=2,
    params:
        fail=lambda wildcards: int(wildcards.i) == int(config.get("fail", -1)),
    shell:
        "(echo job=${{SLURM_JOB_ID:-local}} gpus=${{SLURM_GPUS_ON_NODE:-none}} cuda=${{CUDA_VISIBLE_DEVICES:-none}};"
        " date +start=%s.%N; sleep 3; date +end=%s.%N; test {params.fail} = False) > {log} 2>&1"
        " && echo ${{SLURM_JOB_ID:-local}} > {output}"
