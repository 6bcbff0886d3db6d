"""The workflow's plan, read from its config: every run it trains, each run's resolved config and
evaluations, the starting models' configs, and the text of every config file the workflow writes.

Pure Python (no Snakemake): workflow/rules/common.smk turns a Plan into jobs, and a bad config fails
here, at `snakemake -n`, with lens.config's message (key and file) before any job starts.

    runs      (model, algo, seed) -> RunConfig; `algo` an algorithm id, or an arm such as
              `lens/alpha-4` (a sweep value) or `grpo_shuffled/shuffle_frac-0.25` (an ablation arm)
    scopes    "" (main target), "ablations/", "sweeps/": the arms each analysis scope reads
"""

from __future__ import annotations

import dataclasses

import yaml

from lens import layout
from lens.config import (
    AlgorithmConfig,
    ConfigError,
    DatasetConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
    dump_yaml,
    parse,
    to_dict,
    workflow_config_from_dict,
)

# What rule warmup and rule standin write in a model's directory.
WARMUP_FILES = ("config.json", "model.safetensors", "tokenizer.json", "warmup_log.csv")
STANDIN_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class Plan:
    def __init__(self, raw: dict, source: str):
        self.raw, self.source = raw, source
        self.cfg = cfg = workflow_config_from_dict(raw, source=source)
        self.results = cfg.results_dir.rstrip("/")
        self.models = list(cfg.models)
        self.algos = list(cfg.algorithms)
        self.ablation_algos = [a for a in cfg.ablation_algorithms if a not in self.algos]
        # An arm resolves as its algorithm with the arm's value over the `algorithm:` section.
        sweeps = {arm: (algo, params) for arm, algo, params in cfg.sweep_variants()}
        self.sweep_arms = list(sweeps)
        self.arms = {**sweeps, **{arm: (algo, params) for arm, algo, params in cfg.ablation_arms()}}
        self.seeds = list(cfg.seeds)
        self.scope_algos = {"": self.algos, "ablations/": self.algos + self.ablation_algos,
                            "sweeps/": ["grpo"] + self.sweep_arms}
        # The `ablations` target's models and seeds (`ablation_models`, `ablation_seeds`; default: all).
        self.ablation_models, self.ablation_seeds = (list(v) for v in cfg.ablation_runs())
        # The embedded run's warmed-up tiny models (not the rehearsal's stand-ins, which rehearse a hub
        # model's jobs).
        self.tiny_models = [m for m in self.models if cfg.models[m].kind == "tiny"]
        self.synthetic_dir = f"{self.results}/data/synthetic"
        self.merged_config = f"{self.results}/config.yaml"  # what REPORT.md summarises
        self.runs = {(m, a, s): self.resolve(m, a, s)
                     for m in self.models for a in self.algos + self.ablation_algos + self.sweep_arms
                     for s in self.seeds
                     if a in self.algos or a in self.sweep_arms
                     or (m in self.ablation_models and s in self.ablation_seeds)}
        self.config_texts = self._config_texts()

    # ----------------------------------------------------------------------------------------
    # Runs and their configs
    # ----------------------------------------------------------------------------------------
    def model_dir(self, model: str) -> str:
        """Where a model built here lives: its warm-up checkpoint (kind tiny) or stand-in (kind standin)."""
        kind = self.cfg.models[model].kind
        return f"{self.results}/{layout.MODEL.format(model=model)}/{'warmup' if kind == 'tiny' else 'standin'}"

    def model_files(self, model: str) -> list[str]:
        """The files of the model built here (rule warmup or standin), or none for a hub model."""
        kind = self.cfg.models[model].kind
        names = WARMUP_FILES if kind == "tiny" else STANDIN_FILES if kind == "standin" else ()
        return [f"{self.model_dir(model)}/{name}" for name in names]

    def resolve(self, model: str, algo: str, seed: int) -> RunConfig:
        """lens.config's RunConfig; a model built here starts RL from its warm-up or stand-in directory."""
        algo, params = self.arms.get(algo, (algo, None))
        cfg = self.cfg.resolve(model, algo, seed, source=self.source, params=params)
        if self.cfg.models[model].kind != "hub":
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=self.model_dir(model), tiny=None))
        return cfg

    def start_config(self, model: str, seed: int) -> RunConfig:
        """Step 0 is the same model for every algorithm: its evaluation config drops the algorithm and
        training sections (reset to defaults), so changing alpha or the learning rate keeps it."""
        cfg = self.resolve(model, "grpo", seed)
        return dataclasses.replace(cfg, algorithm=AlgorithmConfig(), training=TrainingConfig())

    def scope_runs(self, scope: str) -> list[tuple[str, str, int]]:
        """(model, algo, seed) of every run an analysis scope reads."""
        models, seeds = ((self.ablation_models, self.ablation_seeds) if scope == "ablations/"
                         else (self.models, self.seeds))
        return [(m, a, s) for (m, a, s) in self.runs if a in self.scope_algos[scope] and m in models and s in seeds]

    def _config_texts(self) -> dict[str, str]:
        """{path: text} of every file rule config_file writes: a job reruns only when the text of its own
        config changes (editing alpha retrains the runs that read alpha)."""
        texts = {f"{layout.run_dir(self.results, m, a, s)}/{layout.RUN_CONFIG_FILE}": dump_yaml(cfg)
                 for (m, a, s), cfg in self.runs.items()}
        for m, entry in self.cfg.models.items():
            texts.update({f"{layout.start_dir(self.results, m, s)}/{layout.RUN_CONFIG_FILE}":
                          dump_yaml(self.start_config(m, s)) for s in self.seeds})
            if entry.kind == "hub":
                continue
            # Through the dataclasses: a canonical text (field order), whatever the YAML's key order.
            model = to_dict(parse(ModelConfig, {**entry.model, "name": m}, source=self.source,
                                  key=f"models.{m}.model"))
            if entry.kind == "tiny":
                # torch_threads stays in: the thread count decides the order of the kernels' sums, so
                # another count trains another model (and reruns the warm-up).
                section = {"model": model, "warmup": to_dict(self.cfg.warmup)}
            else:  # the stand-in's tokenizer is trained on the run's training problems (lens.tiny's CLI)
                section = {"model": model, "corpus": [to_dict(ds) for ds in self.cfg.data.train],
                           "corpus_limit": 2000, "seed": 0}
            texts[f"{self.model_dir(m)}.yaml"] = yaml.safe_dump(section, sort_keys=False)
        if self.cfg.synthetic is not None:
            texts[f"{self.synthetic_dir}.yaml"] = yaml.safe_dump(to_dict(self.cfg.synthetic), sort_keys=False)
        texts[self.merged_config] = f"# merged from: {self.source}\n{yaml.safe_dump(self.raw, sort_keys=False)}"
        return texts

    # ----------------------------------------------------------------------------------------
    # Evaluations
    # ----------------------------------------------------------------------------------------
    def run_evals(self, model: str, algo: str, seed: int) -> list[tuple[str, int]]:
        """(benchmark, step) of every evaluation of one run, step 0 included."""
        cfg = self.runs[(model, algo, int(seed))]
        return [(ds.id, step) for step in [0, *cfg.eval_steps()] for ds in cfg.benchmarks_at(step)]

    def tiny_eval_steps(self) -> list[int] | None:
        """Steps > 0 evaluated in every run of a tiny model, when all those runs share them (else None).

        Evaluating a tiny model costs less than a job's start-up (imports, model load), so each such run
        gets one evaluation job for all its steps after 0 (rule evaluate_run); hub models keep one job
        per step, which run in parallel on several GPUs."""
        schedules = {tuple(cfg.eval_steps()) for (m, _, _), cfg in self.runs.items() if m in self.tiny_models}
        return list(next(iter(schedules))) if len(schedules) == 1 else None

    def final_evaluations(self) -> tuple[int, list[str]] | None:
        """(last step, benchmark ids) when every run of a hub model or stand-in ends on the same step with
        the same several benchmarks (the curve set and the final sets: MATH-500 and the MATH test), else
        None. Those get one job per run for all of them (rule evaluate_final), so the model, and on GPUs
        vLLM's engine, is loaded once instead of once per benchmark."""
        plans = {(cfg.training.rollout_steps, tuple(ds.id for ds in cfg.benchmarks_at(cfg.training.rollout_steps)))
                 for (m, _, _), cfg in self.runs.items() if m not in self.tiny_models}
        if len(plans) != 1:
            return None
        step, ids = next(iter(plans))
        return (step, list(ids)) if len(ids) > 1 else None

    def dataset_files(self, datasets: list[DatasetConfig]) -> list[str]:
        """Local files a job reads: the synthetic splits (made by rule synthetic); hub ids need none."""
        return sorted({f"{self.synthetic_dir}/{ds.split}.jsonl" for ds in datasets if ds.name == "synthetic"})

    @staticmethod
    def benchmark(cfg: RunConfig, benchmark: str) -> DatasetConfig:
        for ds in list(cfg.evaluation.benchmarks) + list(cfg.evaluation.final_benchmarks):
            if ds.id == benchmark:
                return ds
        raise ConfigError(f"benchmark {benchmark!r} is not configured for this run")

    # ----------------------------------------------------------------------------------------
    # Jobs: what each reads, where it runs
    # ----------------------------------------------------------------------------------------
    def run_files(self, model: str, algo: str, seed: int, datasets, done: bool = False) -> dict:
        """A run job's inputs: the run's config, its completion marker (`done`), the local data of `datasets`."""
        run = layout.run_dir(self.results, model, algo, seed)
        return {"config": f"{run}/{layout.RUN_CONFIG_FILE}", **({"done": f"{run}/{layout.DONE_FILE}"} if done else {}),
                "data": self.dataset_files(datasets)}

    def train_inputs(self, model: str, algo: str, seed: int) -> dict:
        config, data = self.run_files(model, algo, seed, self.runs[(model, algo, seed)].data.train).values()
        return {"config": config, "start": self.model_files(model), "data": data}

    def eval_inputs(self, model: str, algo: str, seed: int, benchmark: str) -> dict:
        return self.run_files(model, algo, seed, [self.benchmark(self.runs[(model, algo, seed)], benchmark)], done=True)

    def final_eval_inputs(self, model: str, algo: str, seed: int) -> dict:
        """evaluate_final's inputs: every benchmark of the last step."""
        cfg = self.runs[(model, algo, seed)]
        return self.run_files(model, algo, seed, cfg.benchmarks_at(cfg.training.rollout_steps), done=True)

    def start_eval_inputs(self, model: str, seed: int, benchmark: str) -> dict:
        cfg = self.start_config(model, seed)
        return {"config": f"{layout.start_dir(self.results, model, seed)}/{layout.RUN_CONFIG_FILE}",
                "start": self.model_files(model), "data": self.dataset_files([self.benchmark(cfg, benchmark)])}

    def checkpoint(self, model: str, algo: str, seed: int, step: int | None = None) -> str:
        """The Hugging Face directory of a run's checkpoint at rollout step `step` (default: the last)."""
        cfg = self.runs[(model, algo, seed)]
        step = cfg.training.rollout_steps if step is None else step
        return str(layout.checkpoint_path(layout.run_dir(self.results, model, algo, seed), step, cfg))

    def gpus(self, model: str) -> int:
        """GPUs of a training job; an evaluation takes one of them (vLLM or generate), or none on a CPU."""
        return self.cfg.models[model].training_gpus()

    def train_threads(self, model: str, algo: str, seed: int) -> int:
        """Cores a training job takes: its torch threads, times its processes on the CPU."""
        entry = self.cfg.models[model]
        threads = self.runs[(model, algo, seed)].training.torch_threads or 1
        return threads * (1 if entry.training_gpus() else entry.training_processes())

    def eval_threads(self, model: str) -> int:
        return self.runs[next(k for k in self.runs if k[0] == model)].evaluation.torch_threads or 1

    # ----------------------------------------------------------------------------------------
    # Analysis
    # ----------------------------------------------------------------------------------------
    def collect_args(self, scope: str) -> str:
        """analysis.collect's --models/--seeds where a scope reads fewer than every model and seed (the
        `ablations` scope under `ablation_models`/`ablation_seeds`): the runs folder holds them all."""
        if scope != "ablations/":
            return ""
        # Arms among the ablation arms live in sweep folders: read those (--sweeps), but only the scope's arms.
        arms = [a for a in self.ablation_algos if a in self.arms]
        return " ".join([
            *([f"--models {' '.join(self.ablation_models)}"] if self.ablation_models != self.models else []),
            *([f"--seeds {' '.join(map(str, self.ablation_seeds))}"] if self.ablation_seeds != self.seeds else []),
            *([f"--sweeps --algos {' '.join(self.scope_algos[scope])}"] if arms else []),
        ])
